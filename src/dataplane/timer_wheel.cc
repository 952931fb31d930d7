#include "dataplane/timer_wheel.h"

#include <algorithm>
#include <bit>

namespace mtlsgw::dataplane {

TimerWheel::TimerWheel(uint64_t now_us, uint32_t tick_us, uint32_t slot_count)
    : now_us_(now_us),
      tick_us_(std::max<uint32_t>(tick_us, 1)),
      mask_(std::bit_ceil(std::clamp<uint32_t>(slot_count, 1, kMaxSlots)) - 1),
      slots_(std::make_unique<TimerNode[]>(mask_ + 1)) {
  tick_ = now_us_ / tick_us_;
  tick_start_us_ = tick_ * tick_us_;
  tick_end_us_ = tick_start_us_ + tick_us_;
  cur_sub_ = sub_of(now_us_);
  next_check_us_ = tick_end_us_;
  for (uint64_t i = 0; i <= mask_; ++i) init_head(slots_[i]);
  for (TimerNode& head : subs_) init_head(head);
  for (TimerNode* head : {&due_, &pending_, &keep_}) init_head(*head);
}

TimerWheel::~TimerWheel() {
  const auto disarm_all = [](TimerNode& head) {
    for (TimerNode* node = head.next; node != &head;) {
      TimerNode* next = node->next;
      node->next = node->prev = nullptr;
      node = next;
    }
  };
  disarm_all(due_);
  for (TimerNode& head : subs_) disarm_all(head);
  for (uint64_t i = 0; i <= mask_; ++i) disarm_all(slots_[i]);
}

}  // namespace mtlsgw::dataplane
