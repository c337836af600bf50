// Watchdog (dist/watchdog.h): one thread per Communicator, waking a few times a second to check the open
// collectives' ages and to poll those that complete on a GPU stream.
#include "dist/watchdog.h"

#include <algorithm>
#include <cstdio>
#include <vector>

#include "core/error.h"

namespace fn::dist {

Watchdog::Watchdog(double timeout_s, std::string who, OnTimeout on_timeout)
    : timeout_s_(timeout_s), who_(std::move(who)), on_timeout_(std::move(on_timeout)) {
  if (timeout_s_ > 0) thread_ = std::thread([this] { run(); });
}

Watchdog::~Watchdog() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

uint64_t Watchdog::begin(std::string what) { return begin_polled(std::move(what), nullptr); }

uint64_t Watchdog::begin_polled(std::string what, std::function<bool()> done) {
  std::lock_guard<std::mutex> lock(mu_);
  const uint64_t t = next_++;
  if (timeout_s_ > 0) open_.emplace(t, Entry{std::move(what), Clock::now(), std::move(done)});
  return t;
}

void Watchdog::end(uint64_t ticket) {
  std::lock_guard<std::mutex> lock(mu_);
  open_.erase(ticket);
}

bool Watchdog::fired() const {
  std::lock_guard<std::mutex> lock(mu_);
  return fired_;
}

size_t Watchdog::open_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return open_.size();
}

void Watchdog::run() {
  // Checks every 1/20 of the timeout, between 10 ms and 250 ms: a timeout fires at most 5% (or 250 ms) late.
  const auto period = std::chrono::duration<double>(std::clamp(timeout_s_ / 20.0, 0.01, 0.25));
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    cv_.wait_for(lock, period, [this] { return stop_; });
    if (stop_ || fired_) continue;
    const auto now = Clock::now();
    for (auto it = open_.begin(); it != open_.end();) {
      Entry& e = it->second;
      if (e.done && e.done()) {  // polled under the lock: end() cannot free what done() reads meanwhile
        it = open_.erase(it);
        continue;
      }
      const double age = std::chrono::duration<double>(now - e.start).count();
      if (age >= timeout_s_) {
        fired_ = true;
        const std::string msg =
            cat("fn::dist watchdog: ", who_, ": collective '", e.what, "' has not completed after ", age,
                " s (timeout ", timeout_s_, " s): a peer rank has died, stalled or left the collective order");
        lock.unlock();  // the action may exit, or (in tests) call back into end()
        on_timeout_(msg);
        lock.lock();
        break;
      }
      ++it;
    }
  }
}

}  // namespace fn::dist
