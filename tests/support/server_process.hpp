#pragma once
// Starts the real callstream binary for end-to-end tests and stops it again.
//
// The server listens on 127.0.0.1 with --port 0; its port is read from the "listening" log
// line. Its stderr goes to a file the test can read (log assertions, secret greps).

#include <chrono>
#include <cstdint>
#include <string>
#include <sys/types.h>
#include <vector>

namespace callstream::testing {

class server_process {
  public:
    // `args` are appended to: --host 127.0.0.1 --port 0 --threads 2. The child gets this
    // process's environment without any TWILIO_* or CALLSTREAM_* variable, plus `env`
    // ("NAME=value" entries). CALLSTREAM_TEST_SERVER_ARGS (space-separated flags, read from
    // this process's environment) is appended after `args`. Throws std::runtime_error if it does
    // not log "listening" in 15 s.
    explicit server_process(std::vector<std::string> args = {}, std::vector<std::string> env = {});
    ~server_process();
    server_process(const server_process&) = delete;
    server_process& operator=(const server_process&) = delete;

    std::uint16_t port() const noexcept { return port_; }
    pid_t pid() const noexcept { return pid_; }
    std::string log() const;
    // Waits until the log contains `text`; false on timeout.
    bool wait_for_log(const std::string& text,
                      std::chrono::milliseconds timeout = std::chrono::seconds(10)) const;
    // Sends `signo` and waits for exit; returns the exit status (128+N for a signal death),
    // or -1 if it did not exit within `timeout`.
    int stop(int signo, std::chrono::milliseconds timeout = std::chrono::seconds(20));
    // Sends a signal without waiting.
    void signal(int signo) const;
    bool running() const;

  private:
    pid_t pid_ = -1;
    std::uint16_t port_ = 0;
    std::string log_path_;
    int exit_status_ = -1;
};

// A fresh temporary directory, removed with its contents on destruction.
class temp_dir {
  public:
    temp_dir();
    ~temp_dir();
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
    const std::string& path() const noexcept { return path_; }
    std::string file(const std::string& name) const { return path_ + "/" + name; }

  private:
    std::string path_;
};

// Runs a shell command; returns its exit status.
int run_command(const std::string& command);
// A self-signed P-256 certificate for `cn` and its key, written to `dir` (openssl req, valid for
// a day); false when openssl fails.
bool make_self_signed_cert(const temp_dir& dir, const std::string& cn = "localhost",
                           const std::string& cert = "cert.pem",
                           const std::string& key = "key.pem");
std::vector<std::uint8_t> read_file(const std::string& path);
std::string read_text_file(const std::string& path);
bool have_program(const std::string& name);

// Throws std::runtime_error naming the Debian package when `name` is not on PATH: a missing
// tool fails the test, it never skips it.
void require_program(const std::string& name, const std::string& debian_package);

// Real speech (espeak-ng) as 8 kHz μ-law bytes, made with sox in `dir`; `seconds` long unless
// the sentence is shorter. Throws (naming the package) when espeak-ng or sox is missing.
std::vector<std::uint8_t> make_speech_ulaw(const temp_dir& dir, double seconds = 3.0);

} // namespace callstream::testing
