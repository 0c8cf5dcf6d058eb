#pragma once
// The seam between a media session's transport (the WebSocket: reads, a bounded outbox, timers,
// closing) and the protocol spoken over it (twilio_stream: the Twilio Media Streams state
// machine driving a pipeline). The transport owns its handler; neither knows the other's type,
// so a fork stream (one that only listens and sends nothing back) or a bridged stream is another
// stream_handler over the same transport.
//
// Threading: every call in both directions runs on the transport's network thread, except the
// callable returned by cross_thread_wakeup(), which any thread may call.
// Messages are whole WebSocket text messages (Twilio JSON, one 20 ms media frame per message).

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <boost/asio/any_io_executor.hpp>

#include "pipeline/warm_lines.hpp"
#include "server/media/close_reason.hpp"

namespace callstream::pipeline {
class stream_pipeline;
} // namespace callstream::pipeline

namespace callstream::server {

class media_session_handle;

// The WebSocket close codes (RFC 6455 section 7.4.1) media streams close with.
namespace close_code {
inline constexpr std::uint16_t normal = 1000;
inline constexpr std::uint16_t going_away = 1001;       // server shutdown
inline constexpr std::uint16_t unsupported_data = 1003; // binary frame
inline constexpr std::uint16_t bad_payload = 1007;      // bad JSON, bad base64
inline constexpr std::uint16_t policy = 1008;           // protocol order, slow consumer, bad app
inline constexpr std::uint16_t too_big = 1009;          // over --max-message-bytes
} // namespace close_code

// What a queued message is: media may be dropped (by a clear, or at close); control never is.
enum class message_kind : std::uint8_t { media, control };

// What a stream handler may ask of its transport.
class stream_transport {
  public:
    // A string to write the next message into, recycled from sent ones (no allocation in the
    // steady state). It may hold an old message: the writer sets its size (resize or assign).
    virtual std::string take_buffer() = 0;
    // Queues one text message; at most one write is in flight. The outbox is bounded in bytes
    // (--outbox-bytes): over the bound the transport closes with 1008 (slow_consumer). Ignored
    // once the transport is closing (media dropped then is counted as abandoned at close).
    virtual void send(std::string text, message_kind kind) = 0;
    // Drops the media queued but not yet handed to the socket; returns how many messages.
    virtual std::size_t drop_queued_media() = 0;
    // Closes now with a WebSocket close `code` and `text` (cut to the 123 bytes RFC 6455
    // allows); `why` is what /metrics counts (the first reason recorded wins, except shutdown).
    virtual void close(std::uint16_t code, std::string_view text, close_reason why) = 0;
    // Stops reading and closes normally (1000) once the outbox has been written; a peer that
    // stops reading meanwhile is cut off after the close deadline.
    virtual void close_when_flushed(std::string_view text, close_reason why) = 0;
    // True once close() ran (or the connection broke): sending is pointless.
    virtual bool closing() const noexcept = 0;
    // A callable any thread may call (e.g. a DSP worker): it posts the handler's on_wakeup() to
    // the transport's thread, and does nothing once the session has ended. Allocates; take it once.
    virtual std::function<void()> cross_thread_wakeup() = 0;
    // The transport's network thread, for work that must run beside it (the call's bridge
    // socket and timers).
    virtual boost::asio::any_io_executor executor() = 0;
    // The lines prefetched before each read of the socket (pipeline/warm_lines.hpp). The
    // transport adds its own first; a handler adds the lines that stay put (objects, buffers)
    // between drop_per_frame() and keep(), and the ones that move in add_next_message_lines().
    // Only plain sockets prefetch (over TLS the list is kept but not used).
    virtual pipeline::warm_lines& hot_lines() = 0;

  protected:
    ~stream_transport() = default;
};

// What the transport calls on its handler, in this order: on_open once, then on_text /
// on_wakeup / on_pipeline_request any number of times, then on_closed once. on_open is not
// called (nor on_closed) when the WebSocket handshake fails.
class stream_handler {
  public:
    virtual ~stream_handler() = default;
    // The WebSocket is open. `transport` outlives the handler; `handle` is what registries hold.
    virtual void on_open(stream_transport& transport,
                         std::weak_ptr<media_session_handle> handle) = 0;
    // One text message. simdjson may read up to `capacity` bytes from text.data() (padding).
    virtual void on_text(std::string_view text, std::size_t capacity) = 0;
    // A cross_thread_wakeup() callable was called.
    virtual void on_wakeup() {}
    // Asked after each message: true while the transport should stop reading the socket (the
    // stream's consumer is behind), so TCP slows the sender instead of anything being dropped.
    // While true the transport asks again every few milliseconds.
    virtual bool reading_paused() { return false; }
    // Another thread asked (media_session_handle::post_to_pipeline) to run `fn` on the
    // pipeline; ignore it when there is no running pipeline.
    virtual void on_pipeline_request(const std::function<void(pipeline::stream_pipeline&)>& fn) = 0;
    // Before each read: the lines the next message will touch that move from message to
    // message (stream_transport::hot_lines() has the ones that stay put).
    virtual void add_next_message_lines(pipeline::warm_lines& /*lines*/) {}
    // The session ended for `why`; release what the stream holds (files, registry entries).
    virtual void on_closed(close_reason why) = 0;
    // Names the stream in the transport's log lines (empty before start).
    virtual std::string_view log_id() const noexcept = 0;
};

} // namespace callstream::server
