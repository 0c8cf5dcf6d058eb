#include "tests/support/server_process.hpp"

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>
#include <string_view>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include <gtest/gtest.h>

extern char** environ; // POSIX: the process environment

#ifndef CALLSTREAM_BIN
#define CALLSTREAM_BIN "callstream"
#endif

namespace callstream::testing {

server_process::server_process(std::vector<std::string> args, std::vector<std::string> env) {
    char tmpl[] = "/tmp/callstream-log-XXXXXX";
    const int fd = ::mkstemp(tmpl);
    if (fd < 0) {
        throw std::runtime_error("mkstemp failed");
    }
    log_path_ = tmpl;
    // The server binary: this build's, or CALLSTREAM_TEST_SERVER_BIN (scripts/test runs the
    // release build's end-to-end tests against the ThreadSanitizer build of the server, so the
    // test clients need not be built under TSan too).
    const char* other_bin = std::getenv("CALLSTREAM_TEST_SERVER_BIN");
    const std::string bin = other_bin != nullptr && *other_bin != '\0' ? other_bin : CALLSTREAM_BIN;
    if (::access(bin.c_str(), X_OK) != 0) {
        throw std::runtime_error("no server binary to run at " + bin);
    }
    std::vector<std::string> argv_s{bin, "--host", "127.0.0.1", "--port", "0", "--threads", "2"};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    // Extra flags for every server a test run starts (e.g. "--dsp-threads 2" for the
    // ThreadSanitizer run of the e2e cases): space-separated, appended last so they win.
    if (const char* extra = std::getenv("CALLSTREAM_TEST_SERVER_ARGS")) {
        std::istringstream words(extra);
        for (std::string w; words >> w;) {
            argv_s.push_back(w);
        }
    }
    // The child's environment: ours without TWILIO_* and CALLSTREAM_* (a developer's real
    // credentials or settings must not change what a test sees), then `env`. Built before
    // fork: the child only calls async-signal-safe functions.
    std::vector<std::string> env_s;
    for (char** e = environ; *e != nullptr; ++e) {
        const std::string_view entry(*e);
        if (entry.rfind("TWILIO_", 0) != 0 && entry.rfind("CALLSTREAM_", 0) != 0) {
            env_s.emplace_back(entry);
        }
    }
    env_s.insert(env_s.end(), env.begin(), env.end());
    std::vector<char*> argv;
    for (auto& a : argv_s) {
        argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    std::vector<char*> envp;
    for (auto& e : env_s) {
        envp.push_back(e.data());
    }
    envp.push_back(nullptr);
    pid_ = ::fork();
    if (pid_ < 0) {
        throw std::runtime_error("fork failed");
    }
    if (pid_ == 0) {
        ::dup2(fd, STDERR_FILENO);
        ::dup2(fd, STDOUT_FILENO);
        ::execve(argv[0], argv.data(), envp.data());
        std::_Exit(127);
    }
    ::close(fd);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (std::chrono::steady_clock::now() < deadline) {
        const std::string text = log();
        if (const auto pos = text.find(" listening "); pos != std::string::npos) {
            const auto p = text.find("port=", pos);
            port_ = static_cast<std::uint16_t>(std::atoi(text.c_str() + p + 5));
            return;
        }
        // --log-format json: {"ts":…,"event":"listening",…,"port":"N",…}
        if (const auto pos = text.find(R"("event":"listening")"); pos != std::string::npos) {
            const auto p = text.find(R"("port":")", pos);
            port_ = static_cast<std::uint16_t>(std::atoi(text.c_str() + p + 8));
            return;
        }
        if (!running()) {
            throw std::runtime_error("callstream exited at startup: " + text);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    // No destructor runs for a constructor that throws: do not leave the child behind.
    const std::string text = log();
    stop(SIGKILL, std::chrono::seconds(5));
    std::remove(log_path_.c_str());
    throw std::runtime_error("callstream did not start: " + text);
}

server_process::~server_process() {
    if (running()) {
        stop(SIGKILL, std::chrono::seconds(5));
    }
    // Under the sanitizer builds the server reports into its log and keeps running (TSan) or
    // dies (ASan, UBSan): either way the report must fail the test that started it.
    const std::string text = log();
    for (const char* marker : {"WARNING: ThreadSanitizer", "ERROR: AddressSanitizer",
                               "ERROR: LeakSanitizer", "runtime error:"}) {
        if (const auto pos = text.find(marker); pos != std::string::npos) {
            ADD_FAILURE() << "the server reported \"" << marker << "\":\n"
                          << text.substr(pos > 2000 ? pos - 2000 : 0, 12000);
            break;
        }
    }
    std::remove(log_path_.c_str());
}

std::string server_process::log() const {
    return read_text_file(log_path_);
}

bool server_process::wait_for_log(const std::string& text,
                                  std::chrono::milliseconds timeout) const {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        if (log().find(text) != std::string::npos) {
            return true;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
}

void server_process::signal(int signo) const {
    ::kill(pid_, signo);
}

bool server_process::running() const {
    if (exit_status_ != -1 || pid_ <= 0) {
        return false;
    }
    int status = 0;
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
        auto* self = const_cast<server_process*>(this);
        self->exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        return false;
    }
    return true;
}

int server_process::stop(int signo, std::chrono::milliseconds timeout) {
    if (!running()) {
        return exit_status_;
    }
    ::kill(pid_, signo);
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        if (!running()) {
            return exit_status_;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return -1;
}

temp_dir::temp_dir() {
    char tmpl[] = "/tmp/callstream-test-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) {
        throw std::runtime_error("mkdtemp failed");
    }
    path_ = tmpl;
}

temp_dir::~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
}

int run_command(const std::string& command) {
    const int status = std::system(command.c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

bool make_self_signed_cert(const temp_dir& dir, const std::string& cn, const std::string& cert,
                           const std::string& key) {
    return run_command("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
                       "-nodes -days 1 -subj /CN=" +
                       cn + " -keyout " + dir.file(key) + " -out " + dir.file(cert) +
                       " >/dev/null 2>&1") == 0;
}

std::vector<std::uint8_t> read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string read_text_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

bool have_program(const std::string& name) {
    return run_command("command -v " + name + " >/dev/null 2>&1") == 0;
}

void require_program(const std::string& name, const std::string& debian_package) {
    if (!have_program(name)) {
        throw std::runtime_error(name + " is not installed: apt-get install " + debian_package +
                                 " (scripts/setup installs it)");
    }
}

std::vector<std::uint8_t> make_speech_ulaw(const temp_dir& dir, double seconds) {
    require_program("espeak-ng", "espeak-ng");
    require_program("sox", "sox");
    const std::string wav = dir.file("speech.wav");
    const std::string ul = dir.file("speech.ul");
    const std::string make =
        "espeak-ng -w " + wav +
        " 'Thank you for calling. Your call is important to us. Please hold while we "
        "connect you to the next available agent.' >/dev/null 2>&1";
    if (run_command(make) != 0 ||
        run_command("sox " + wav + " -r 8000 -c 1 -t ul " + ul + " trim 0 " +
                    std::to_string(seconds) + " >/dev/null 2>&1") != 0) {
        throw std::runtime_error("could not make speech audio with espeak-ng and sox");
    }
    return read_file(ul);
}

} // namespace callstream::testing
