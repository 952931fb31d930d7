// Segment arrival: RFC 9293 3.10.7 step by step, with RFC 5961 (blind
// in-window attacks), RFC 7323 (window scaling, timestamps, PAWS), RFC 2018
// (SACK) and RFC 5681/6582/6675 (what an ACK means for congestion and loss).

#include <algorithm>

#include "dataplane/net/ethernet.h"
#include "dataplane/net/interface.h"
#include "dataplane/net/tcp_seq.h"
#include "dataplane/net/tcp_stack.h"

namespace mtlsgw::net::tcp {
namespace {

// RFC 7323 5.5: timestamps older than 24 days are invalid for PAWS.
constexpr uint64_t kPawsIdleUs = 24ull * 24 * 3600 * 1'000'000;
// PAWS lets a TSval one tick older than TS.Recent through, as Linux does
// (TCP_PAWS_WINDOW). Segments reordered by less than a tick of the peer's
// clock cross a tick boundary now and then: against Linux (1 ms ticks) with
// 3 % of frames held back 0.5 ms, 456 segments on 40 MiB failed the strict
// test of RFC 7323 5.3, about a tenth of them new data (dropped, to be
// retransmitted). One tick changes nothing for what PAWS is for: a wrapped
// old duplicate is seconds to days old.
constexpr uint32_t kPawsWindowTicks = 1;
constexpr uint8_t kDupThresh = 3;  // RFC 5681 3.2

}  // namespace

void TcpStack::input(Interface& iface, Frame frame, const ipv4::Header& ip,
                     uint64_t now_us) noexcept {
  now_us_ = now_us;
  counters_.segments_in.add();
  const uint8_t* const data = frame.data + ethernet::kHeaderLen + ip.header_len;
  const uint16_t len = static_cast<uint16_t>(ip.total_len - ip.header_len);
  UnverifiedSegment raw;
  Segment seg;
  Rejection rejection = parse_lengths(data, len, ip.src, ip.dst, raw);
  // The connection is looked up before the checksum is known (it reads the
  // ports, changes nothing) so that an in-order payload is summed while it
  // is copied to its place in the receive buffer: one pass over it, not two.
  uint32_t index = FlatIndex<FourTuple, TupleHash>::kNone;
  if (!rejection) {
    index = table_.find(FourTuple{ip.dst, raw.dst_port, ip.src, raw.src_port});
    uint16_t payload_sum = 0;
    bool placed = false;
    if (index != FlatIndex<FourTuple, TupleHash>::kNone && tcbs_[index].rcv_buffer != UINT32_MAX) {
      Tcb& tcb = tcbs_[index];
      placed = tcb.rcv.place(raw.seq - tcb.rcv_nxt, raw.payload, raw.payload_len, payload_sum);
    }
    if (!placed) payload_sum = checksum(raw.payload, raw.payload_len);
    rejection = checksum_ok(raw, payload_sum) ? parse_verified(raw, seg)
                                              : Rejection{DropReason::tcp_bad_checksum};
  }
  if (rejection) {
    iface.drop(frame, *rejection);
    return;
  }
  // RFC 1122 4.2.3.10: TCP is unicast only.
  if (!iface.owns(ip.dst)) {
    iface.drop(frame, DropReason::ipv4_not_for_us);
    return;
  }
  if ((seg.has(kFlagSyn) && (seg.has(kFlagFin) || seg.has(kFlagRst)))) {
    iface.drop(frame, DropReason::tcp_bad_flags);
    return;
  }
  const FourTuple tuple{ip.dst, seg.dst_port, ip.src, seg.src_port};
  if (index == FlatIndex<FourTuple, TupleHash>::kNone) {
    if (foreign_ != nullptr && foreign_(foreign_context_, iface, frame, tuple)) return;
    if (const Listener* listener = find_listener(seg.dst_port)) {
      listen_input(iface, ip, seg, *listener, now_us);
    } else {
      // RFC 9293 3.10.7.1: CLOSED answers everything but a reset with one.
      iface.counters().drop(DropReason::tcp_no_listener);
      send_reset_for(iface, ip, seg);
    }
    iface.io().release(frame);
    return;
  }
  Tcb& tcb = tcbs_[index];
  tcb.last_received_us = now_us;
  tcb.keepalive_probes_sent = 0;
  if (tcb.state == State::syn_sent) {
    syn_sent_input(tcb, seg, now_us);
  } else if (!config_.header_prediction || !predicted_input(tcb, seg, now_us)) {
    synchronized_input(tcb, seg, now_us);
  }
  iface.io().release(frame);
}

void TcpStack::negotiate_syn_options(Tcb& tcb, const Segment& seg) noexcept {
  // RFC 9293 3.7.1: without the option the peer takes 536.
  const uint16_t peer_mss = seg.options.mss != 0 ? seg.options.mss : 536;
  tcb.smss = std::max<uint16_t>(std::min<uint16_t>(peer_mss, config_.mss), 64);
  tcb.cc.set_smss(tcb.smss);
  // RFC 7323 2.2: scaling is on only when both SYNs carry the option.
  tcb.wscale_ok = seg.options.has_window_scale;
  if (tcb.wscale_ok) {
    tcb.snd_wscale = std::min<uint8_t>(seg.options.window_scale, kMaxWindowScale);
    tcb.rcv_wscale = window_shift_for(config_.buffer_size);
  } else {
    tcb.snd_wscale = 0;
    tcb.rcv_wscale = 0;
  }
  tcb.sack_ok = seg.options.sack_permitted;
  tcb.cc.set_sack(tcb.sack_ok);
  tcb.ts_ok = seg.options.has_timestamps;
  if (tcb.ts_ok) {
    tcb.ts_recent = seg.options.ts_value;
    tcb.ts_recent_us = now_us_;
  }
}

void TcpStack::listen_input(Interface& iface, const ipv4::Header& ip, const Segment& seg,
                            const Listener& listener, uint64_t now_us) noexcept {
  const FourTuple tuple{ip.dst, seg.dst_port, ip.src, seg.src_port};
  if (seg.has(kFlagRst)) return;  // RFC 9293 3.10.7.2: ignore
  if (seg.has(kFlagAck)) {
    if (!seg.has(kFlagSyn) && config_.syn_cookies) {
      // Possibly the third segment of a handshake we answered with a cookie.
      if (auto mss = cookies_.check(tuple, seg.seq - 1, seg.ack - 1, now_us)) {
        Tcb* tcb = allocate(tuple, iface, listener.app, now_us);
        if (tcb == nullptr) {
          iface.counters().drop(DropReason::tcp_connection_limit);
          return;
        }
        counters_.syn_cookies_validated.add();  // passive_opens: in establish()
        tcb->passive = true;
        // As if the SYN-ACK had come from a TCB: SND.UNA at our SYN, which
        // this ACK acknowledges in the SYN-RECEIVED step below.
        tcb->iss = seg.ack - 1;
        tcb->snd_una = tcb->iss;
        tcb->snd_nxt = seg.ack;
        tcb->snd_max = seg.ack;
        tcb->irs = seg.seq - 1;
        tcb->rcv_nxt = seg.seq;
        tcb->rcv_adv = seg.seq + std::min<uint32_t>(config_.buffer_size, 0xffff);
        tcb->smss = std::min<uint16_t>(*mss, config_.mss);
        tcb->cc.set_smss(tcb->smss);
        if (seg.options.has_timestamps) {
          const SynCookies::TsOptions remembered = cookies_.decode_ts(seg.options.ts_echo);
          tcb->ts_ok = true;
          tcb->ts_recent = seg.options.ts_value;
          tcb->ts_recent_us = now_us;
          tcb->sack_ok = remembered.sack_permitted;
          tcb->cc.set_sack(tcb->sack_ok);
          if (remembered.window_scale != 15) {
            tcb->wscale_ok = true;
            tcb->snd_wscale = std::min<uint8_t>(remembered.window_scale, kMaxWindowScale);
            tcb->rcv_wscale = window_shift_for(config_.buffer_size);
          }
        }
        tcb->snd_wnd = uint32_t{seg.window} << tcb->snd_wscale;
        tcb->max_snd_wnd = tcb->snd_wnd;
        tcb->snd_wl1 = seg.seq;
        tcb->snd_wl2 = seg.ack;
        set_state(*tcb, State::syn_received);
        synchronized_input(*tcb, seg, now_us);
        return;
      }
      iface.counters().drop(DropReason::tcp_bad_cookie);
    } else {
      iface.counters().drop(DropReason::tcp_no_listener);
    }
    // RFC 9293 3.10.7.2: an ACK in LISTEN gets <SEQ=SEG.ACK><CTL=RST>.
    send_reset_for(iface, ip, seg);
    return;
  }
  if (!seg.has(kFlagSyn)) {
    iface.counters().drop(DropReason::tcp_bad_flags);
    return;
  }
  // A SYN. Past the half-open or connection caps, answer statelessly
  // (RFC 4987 3.6) so that a flood costs no memory.
  if (half_open_ >= config_.max_half_open || used_ >= config_.max_connections) {
    if (config_.syn_cookies) {
      send_cookie_syn_ack(iface, ip, seg, now_us);
    } else {
      iface.counters().drop(used_ >= config_.max_connections ? DropReason::tcp_connection_limit
                                                             : DropReason::tcp_syn_queue_full);
    }
    return;
  }
  Tcb* tcb = allocate(tuple, iface, listener.app, now_us);
  if (tcb == nullptr) {
    iface.counters().drop(DropReason::tcp_connection_limit);
    return;
  }
  tcb->passive = true;
  tcb->irs = seg.seq;
  tcb->rcv_nxt = seg.seq + 1;
  tcb->rcv_adv = tcb->rcv_nxt;
  negotiate_syn_options(*tcb, seg);
  tcb->snd_wnd = seg.window;  // RFC 7323 2.2: a SYN's window is never scaled
  tcb->max_snd_wnd = tcb->snd_wnd;
  tcb->snd_wl1 = seg.seq;
  tcb->iss = config_.fixed_isn != 0 ? config_.fixed_isn : isn_.next(tuple, now_us);
  tcb->snd_una = tcb->iss;
  tcb->snd_max = tcb->iss;
  tcb->snd_nxt = tcb->iss + 1;
  set_state(*tcb, State::syn_received);
  send_segment(*tcb, tcb->iss, 0, kFlagSyn | kFlagAck, now_us);
}

void TcpStack::syn_sent_input(Tcb& tcb, const Segment& seg, uint64_t now_us) noexcept {
  Interface& iface = *tcb.iface;
  // RFC 9293 3.10.7.3, first: the ACK must acknowledge our SYN.
  if (seg.has(kFlagAck) && (seq_le(seg.ack, tcb.iss) || seq_gt(seg.ack, tcb.snd_max))) {
    iface.counters().drop(DropReason::tcp_bad_ack);
    if (!seg.has(kFlagRst)) {
      ipv4::Header ip;
      ip.src = tcb.tuple.remote_ip;
      ip.dst = tcb.tuple.local_ip;
      send_reset_for(iface, ip, seg);
    }
    return;
  }
  if (seg.has(kFlagRst)) {
    // Only with an acceptable ACK (RFC 5961 3.2 keeps this rule for
    // SYN-SENT): the active open is refused.
    if (seg.has(kFlagAck)) {
      counters_.resets_received.add();
      finish(tcb, CloseReason::refused);
    }
    return;
  }
  if (!seg.has(kFlagSyn)) return;
  tcb.irs = seg.seq;
  tcb.rcv_nxt = seg.seq + 1;
  // Our SYN offered an unscaled window (RFC 7323 2.2): data on the SYN-ACK
  // may use it.
  tcb.rcv_adv = tcb.rcv_nxt + std::min<uint32_t>(receive_window(tcb), 0xffff);
  negotiate_syn_options(tcb, seg);
  if (!seg.has(kFlagAck)) {
    // Simultaneous open (RFC 9293 3.5, figure 7).
    tcb.snd_wnd = seg.window;
    tcb.snd_wl1 = seg.seq;
    set_state(tcb, State::syn_received);
    send_segment(tcb, tcb.iss, 0, kFlagSyn | kFlagAck, now_us);
    return;
  }
  tcb.snd_una = seg.ack;
  if (seq_lt(tcb.snd_nxt, tcb.snd_una)) tcb.snd_nxt = tcb.snd_una;
  tcb.snd_wnd = seg.window;  // unscaled in a SYN-ACK (RFC 7323 2.2)
  tcb.max_snd_wnd = tcb.snd_wnd;
  tcb.snd_wl1 = seg.seq;
  tcb.snd_wl2 = seg.ack;
  take_rtt_sample(tcb, seg, now_us);
  // RFC 6298 5.7: a retransmitted SYN means the path may be slow: start
  // from a 3 s RTO unless a timestamp gave a real sample.
  if (tcb.retries != 0) tcb.rtt.restart_after_syn_timeout();
  tcb.retries = 0;
  stop_retransmit_timer(tcb);
  tcb.ack_now = true;
  establish(tcb, now_us);
  const ConnHandle h = handle_of(tcb);
  if (get(h) == nullptr) return;
  // Data or FIN on the SYN-ACK is rare; handle it through the general path.
  if (seg.payload_len != 0 || seg.has(kFlagFin)) {
    Segment rest = seg;
    rest.flags = static_cast<uint8_t>(rest.flags & ~kFlagSyn);
    rest.seq = seg.seq + 1;
    synchronized_input(tcb, rest, now_us);
    return;
  }
  output(tcb, now_us);
}

void TcpStack::establish(Tcb& tcb, uint64_t now_us) noexcept {
  set_state(tcb, State::established);
  // RFC 6582 3.2 step 1 compares ACKs with recover: start it at the ISS.
  tcb.recover = tcb.iss;
  if (config_.keepalive_idle_us != 0) schedule(tcb.keepalive_timer, now_us + config_.keepalive_idle_us);
  const ConnHandle h = handle_of(tcb);
  if (tcb.app == nullptr) return;
  if (tcb.passive) {
    counters_.passive_opens.add();
    tcb.app->on_accepted(*this, h, tcb.tuple);
  } else {
    tcb.app->on_connected(*this, h);
  }
}

bool TcpStack::acceptable(const Tcb& tcb, const Segment& seg) const noexcept {
  // RFC 9293 3.10.7.4, the four cases of the acceptability test.
  const uint32_t wnd = seq_gt(tcb.rcv_adv, tcb.rcv_nxt) ? tcb.rcv_adv - tcb.rcv_nxt : 0;
  const uint32_t len = seg.seg_len();
  if (len == 0) {
    // Up to and including the right edge: a peer whose data filled our
    // window and was lost sends its ACKs with SEG.SEQ = its SND.NXT = our
    // right edge. The strict RCV.NXT + RCV.WND bound dropped every one of
    // them (723 tcp_out_of_window on 20 MiB echo under faults), and with
    // them the only news that our own flight had arrived: each cost a
    // 200 ms RTO. Linux's sequence check has the same inclusive bound; one
    // more acceptable number changes nothing for RFC 5961's blind attacks.
    return seq_in(seg.seq, tcb.rcv_nxt, tcb.rcv_nxt + wnd + 1);
  }
  if (wnd != 0 && (seq_in(seg.seq, tcb.rcv_nxt, tcb.rcv_nxt + wnd) ||
                   seq_in(seg.seq + len - 1, tcb.rcv_nxt, tcb.rcv_nxt + wnd))) {
    return true;
  }
  // A segment of old data reaching to or past the last ACK we sent: the
  // peer's tail loss probe, or a copy that overtook our (delayed) ACK. Its
  // text is a duplicate, but its ACK may be news: the peer's SACK-less tail
  // probe of 20 MiB echo at 3 % loss carried the only acknowledgment of our
  // flight, and dropping it cost a 200 ms RTO each time. Linux accepts the
  // same segments (the sequence check against RCV.WUP), and with a zero
  // window the test above has nothing to accept at all (RFC 9293 3.10.7.4
  // asks to accept valid ACKs then). The text is trimmed as a duplicate.
  // Segments without text (a repeated FIN) keep the rule above.
  return seg.payload_len != 0 && seq_le(seg.seq, tcb.rcv_nxt) &&
         seq_ge(seg.seq + len, tcb.last_ack_sent);
}

bool TcpStack::allow_challenge_ack(Tcb& tcb, uint64_t now_us) noexcept {
  // Per connection, not per stack: a shared budget is an off-path side
  // channel (CVE-2016-5696): spending it on one flow shows on another.
  if (now_us - tcb.challenge_window_us >= 1'000'000) {
    tcb.challenge_window_us = now_us;
    tcb.challenge_acks_in_window = 0;
  }
  if (tcb.challenge_acks_in_window >= config_.challenge_ack_limit) {
    counters_.challenge_acks_suppressed.add();
    return false;
  }
  ++tcb.challenge_acks_in_window;
  counters_.challenge_acks.add();
  return true;
}

bool TcpStack::paws_reject(Tcb& tcb, const Segment& seg, uint64_t now_us) noexcept {
  if (!tcb.ts_ok || !seg.options.has_timestamps || seg.has(kFlagRst)) return false;
  if (static_cast<int32_t>(tcb.ts_recent - seg.options.ts_value) <= static_cast<int32_t>(kPawsWindowTicks)) {
    return false;
  }
  // RFC 7323 5.5: after 24 idle days the recent timestamp is stale.
  if (now_us - tcb.ts_recent_us > kPawsIdleUs) {
    tcb.ts_recent = seg.options.ts_value;
    return false;
  }
  return true;
}

void TcpStack::take_rtt_sample(Tcb& tcb, const Segment& seg, uint64_t now_us) noexcept {
  if (tcb.ts_ok && seg.options.has_timestamps && seg.options.ts_echo != 0) {
    // RFC 7323 4.1: every ACK that echoes one of our timestamps is a sample,
    // even for retransmitted data.
    const uint32_t ms = ts_clock(now_us) - seg.options.ts_echo;
    if (ms < 60'000) tcb.rtt.sample(std::max<uint32_t>(ms * 1000, 1));
    return;
  }
  if (tcb.rtt_timing && seq_gt(seg.ack, tcb.rtt_seq)) {
    tcb.rtt.sample(static_cast<uint32_t>(std::max<uint64_t>(now_us - tcb.rtt_start_us, 1)));
    tcb.rtt_timing = false;
  }
}

SackBlock TcpStack::process_sack(Tcb& tcb, const Segment& seg, uint32_t snd_una,
                                 uint64_t now_us) noexcept {
  const Options& o = seg.options;
  SackBlock dsack{0, 0};
  uint8_t first = 0;
  // RFC 2883 4: a D-SACK is the first block, below the cumulative ACK or
  // inside the second block.
  const SackBlock b0 = o.sack[0];
  if (seq_lt(b0.left, b0.right) &&
      (seq_le(b0.right, seg.ack) ||
       (o.sack_count > 1 && seq_ge(b0.left, o.sack[1].left) && seq_le(b0.right, o.sack[1].right)))) {
    dsack = b0;
    first = 1;
    counters_.dsack_received.add();
  }
  if (!rack_mode(tcb)) return dsack;
  // RFC 2018 5 / RFC 6675: only blocks inside (SND.UNA, SND.MAX] count.
  // In sequence order, so that RACK does not take blocks reported together
  // for reordering (RFC 8985 6.2 step 3).
  SackBlock blocks[kMaxSackBlocks];
  uint8_t n = 0;
  for (uint8_t i = first; i < o.sack_count; ++i) {
    SackBlock b = o.sack[i];
    if (!seq_lt(b.left, b.right) || seq_gt(b.right, tcb.snd_max) || seq_le(b.right, snd_una)) continue;
    if (seq_lt(b.left, snd_una)) b.left = snd_una;
    uint8_t at = n++;
    for (; at > 0 && seq_gt(blocks[at - 1].left, b.left); --at) blocks[at] = blocks[at - 1];
    blocks[at] = b;
  }
  for (uint8_t i = 0; i < n; ++i) tcb.rack.on_sack_block(blocks[i].left, blocks[i].right, now_us);
  return dsack;
}

void TcpStack::enter_recovery(Tcb& tcb, uint64_t now_us) noexcept {
  // RFC 6675 5 step 4 (the trigger is RACK's, RFC 8985 6.2 step 5).
  tcb.in_recovery = true;
  tcb.partial_ack_seen = false;
  tcb.recover = tcb.snd_max;
  tcb.cc.on_enter_recovery(tcb.flight_size(), now_us);
  tcb.rtt_timing = false;
  tcb.pto_at_us = 0;
  counters_.fast_retransmits.add();
  // RFC 6675 5 step (4.3): the first segment deemed lost goes out now,
  // whatever pipe says; the rest follow as cwnd allows (output()).
  uint32_t seq = 0;
  uint32_t len = 0;
  if (tcb.snd_wnd != 0 && tcb.rack.first_lost(&seq, &len)) retransmit_range(tcb, seq, len, now_us);
}

void TcpStack::rack_detect_losses(Tcb& tcb, uint64_t now_us) noexcept {
  uint64_t wait = 0;
  if (tcb.rack.may_detect_loss()) {
    const bool recovering = tcb.in_recovery || tcb.rto_recovery;
    uint32_t lost = 0;
    wait = tcb.rack.detect_loss(now_us, tcb.rack.reo_wnd_us(recovering, tcb.rtt.srtt_us()), &lost);
    if (lost != 0) {
      counters_.rack_detected_lost.add(lost);
      // One reduction per window of data: losses found during a recovery
      // belong to it (RFC 6675 5 / RFC 5681 3.2).
      if (!recovering) enter_recovery(tcb, now_us);
    }
  }
  // RFC 8985 6.3: the reordering timer; a probe waits while it runs. The
  // caller arms the node.
  tcb.reorder_at_us = wait != 0 ? now_us + wait : 0;
  if (wait != 0) tcb.pto_at_us = 0;
}

void TcpStack::rack_after_ack(Tcb& tcb, const Segment& seg, const SackBlock& dsack, bool acked_new,
                              uint64_t now_us) noexcept {
  const bool dsack_seen = dsack.left != dsack.right;
  tcb.rack.on_ack_end(dsack_seen, tcb.snd_una, tcb.snd_max);
  if (tcb.rack.probe_outstanding()) {
    const Rack::ProbeOutcome outcome =
        tcb.rack.on_probe_ack(seg.ack, dsack.left, dsack.right, seg.options.sack_count > (dsack_seen ? 1 : 0));
    if (outcome == Rack::ProbeOutcome::repaired_loss) {
      // RFC 8985 7.4.2: the probe repaired a loss: the congestion response
      // of a recovery that ended at once.
      counters_.tlp_recoveries.add();
      if (!tcb.in_recovery && !tcb.rto_recovery) {
        tcb.cc.on_enter_recovery(tcb.flight_size(), now_us);
        tcb.cc.on_exit_recovery(tcb.flight_size());
      }
    }
  }
  rack_detect_losses(tcb, now_us);
  // RFC 8985 7.2: an ACK of new data restarts the probe timeout; in a
  // recovery every ACK does (see schedule_loss_probe).
  if (acked_new || tcb.in_recovery || tcb.rto_recovery) schedule_loss_probe(tcb, now_us);
  // Once for the ACK, whichever of RTO, probe or reordering timer is first:
  // one wheel operation per ACK, as before RACK.
  arm_retransmit_timer(tcb);
}

void TcpStack::update_send_window(Tcb& tcb, const Segment& seg, bool acked_new) noexcept {
  // RFC 9293 3.10.7.4: only a newer segment may update the window. An ACK
  // that moved SND.UNA is newer too, whatever its SEG.SEQ (a retransmission
  // of old data carrying a fresh ACK): the peer's window is an offset from
  // that ACK, so SND.UNA + SND.WND would otherwise run past the peer's real
  // right edge and send into a window it never offered. Linux's window
  // update test takes such ACKs for the same reason.
  if (acked_new || seq_lt(tcb.snd_wl1, seg.seq) ||
      (tcb.snd_wl1 == seg.seq && seq_le(tcb.snd_wl2, seg.ack))) {
    tcb.snd_wnd = uint32_t{seg.window} << tcb.snd_wscale;
    tcb.snd_wl1 = acked_new ? seq_max(tcb.snd_wl1, seg.seq) : seg.seq;
    tcb.snd_wl2 = seg.ack;
    tcb.max_snd_wnd = std::max(tcb.max_snd_wnd, tcb.snd_wnd);
  }
}

// SND.UNA moves to an acceptable SEG.ACK above it (RFC 9293 3.10.7.4, RFC
// 6298 5.2/5.3, RFC 6582/5681 for what it means to cwnd); shared by
// process_ack and header prediction. RACK has taken the cumulative ACK.
void TcpStack::acknowledge(Tcb& tcb, const Segment& seg, bool rack, uint64_t now_us) noexcept {
  const uint32_t acked = seg.ack - tcb.snd_una;
  const uint32_t data_end = tcb.snd_una + tcb.snd.size();
  const bool fin_acked = tcb.fin_queued && seq_gt(seg.ack, data_end);
  const uint32_t data_acked = fin_acked ? acked - 1 : acked;
  const bool was_cwnd_limited = tcb.flight_size() + tcb.smss >= tcb.cc.cwnd();
  tcb.snd.acknowledge(data_acked);
  tcb.snd_una = seg.ack;
  if (seq_lt(tcb.snd_nxt, tcb.snd_una)) tcb.snd_nxt = tcb.snd_una;
  if (fin_acked) tcb.fin_acked = true;
  // Karn: the backoff stays until a valid RTT sample clears it (sample()).
  take_rtt_sample(tcb, seg, now_us);
  tcb.retries = 0;

  if (tcb.in_recovery) {
    if (seq_ge(seg.ack, tcb.recover)) {
      // RFC 6582 3.2 step 3 (full acknowledgment).
      tcb.in_recovery = false;
      tcb.dupacks = 0;
      tcb.cc.on_exit_recovery(tcb.flight_size());
      tcb.rack.on_recovery_end();
    } else if (!rack) {
      // RFC 6582 3.2 step 5 (partial acknowledgment): the next hole is
      // lost too; resend it at once and deflate.
      tcb.cc.on_partial_ack(acked);
      send_segment(tcb, tcb.snd_una, std::min<uint32_t>(tcb.snd.size(), tcb.smss), kFlagAck, now_us);
      counters_.fast_retransmits.add();
      // RFC 6582 3.2 step 5, "Impatient" variant: only the first partial
      // ACK restarts the timer, so that many holes end in one RTO instead
      // of one hole repaired per RTT.
      if (!tcb.partial_ack_seen) restart_retransmit_timer(tcb);
      tcb.partial_ack_seen = true;
    }
  } else {
    tcb.dupacks = 0;
    tcb.cc.on_ack(acked, was_cwnd_limited, now_us, tcb.rtt.srtt_us());
  }
  if (tcb.rto_recovery && seq_ge(seg.ack, tcb.recover)) {
    tcb.rto_recovery = false;
    tcb.rack.on_recovery_end();
  }
  // RFC 6298 5.2/5.3: stop the timer when all is acked, else restart it
  // (but not for later partial ACKs of a NewReno recovery, see above).
  if (tcb.snd_una == tcb.snd_max) {
    stop_retransmit_timer(tcb);
  } else if (rack) {
    tcb.rto_at_us = now_us + tcb.rtt.rto_us();  // armed by rack_after_ack
  } else if (!(tcb.in_recovery && tcb.partial_ack_seen)) {
    restart_retransmit_timer(tcb);
  }
}

bool TcpStack::process_ack(Tcb& tcb, const Segment& seg, uint64_t now_us) noexcept {
  Interface& iface = *tcb.iface;
  // RFC 5961 5.2: SND.UNA - MAX.SND.WND <= SEG.ACK <= SND.NXT, else
  // (beyond SND.NXT) ACK and drop, (too old) challenge ACK and drop.
  if (seq_gt(seg.ack, tcb.snd_max)) {
    iface.counters().drop(DropReason::tcp_bad_ack);
    tcb.ack_now = true;
    return false;
  }
  const uint32_t max_window = std::max<uint32_t>(tcb.max_snd_wnd, 1);
  if (seq_lt(seg.ack, tcb.snd_una - max_window)) {
    iface.counters().drop(DropReason::tcp_bad_ack);
    if (allow_challenge_ack(tcb, now_us)) tcb.ack_now = true;
    return false;
  }
  const bool rack = rack_mode(tcb);
  const bool acked_new = seq_gt(seg.ack, tcb.snd_una);
  // RACK takes the cumulative ACK first, then the blocks above it.
  if (rack && acked_new) tcb.rack.on_cumulative_ack(seg.ack, now_us);
  SackBlock dsack{0, 0};
  if (tcb.sack_ok && seg.options.sack_count != 0) {
    dsack = process_sack(tcb, seg, acked_new ? seg.ack : tcb.snd_una, now_us);
  }

  if (acked_new) {
    acknowledge(tcb, seg, rack, now_us);
  } else if (!rack && seg.ack == tcb.snd_una && seg.payload_len == 0 && !seg.has(kFlagSyn) &&
             !seg.has(kFlagFin) && tcb.flight_size() != 0 &&
             (uint32_t{seg.window} << tcb.snd_wscale) == tcb.snd_wnd) {
    // A duplicate ACK as RFC 5681 2 defines it (without SACK: with it,
    // RACK decides what is lost).
    ++tcb.dupacks;
    if (!tcb.in_recovery && tcb.dupacks >= kDupThresh && seq_gt(tcb.snd_una, tcb.recover)) {
      // RFC 6582 3.2 step 2: fast retransmit.
      tcb.in_recovery = true;
      tcb.partial_ack_seen = false;
      tcb.recover = tcb.snd_max;
      tcb.cc.on_enter_recovery(tcb.flight_size(), now_us);
      counters_.fast_retransmits.add();
      uint32_t sent = 0;
      send_segment(tcb, tcb.snd_una, std::min<uint32_t>(tcb.snd.size(), tcb.smss), kFlagAck, now_us,
                   &sent);
      tcb.rtt_timing = false;
      restart_retransmit_timer(tcb);
    } else if (tcb.in_recovery) {
      tcb.cc.on_dup_ack_in_recovery();
    }
  }
  update_send_window(tcb, seg, acked_new);
  if (rack) rack_after_ack(tcb, seg, dsack, acked_new, now_us);
  // An answer to a window probe: the peer is alive (RFC 9293 3.8.6.1).
  if (tcb.snd_wnd == 0) tcb.retries = 0;
  return true;
}

void TcpStack::process_data(Tcb& tcb, const Segment& seg, uint64_t now_us) noexcept {
  if (seg.payload_len == 0) return;
  if (tcb.read_closed) {
    // RFC 9293 3.10.4 / RFC 2525 2.17: data for a closed reader is lost:
    // say so with a reset rather than acknowledging it.
    send_reset(tcb);
    finish(tcb, CloseReason::aborted);
    return;
  }
  const uint8_t* data = seg.payload;
  uint32_t len = seg.payload_len;
  uint32_t offset = seg.seq - tcb.rcv_nxt;
  if (seq_lt(seg.seq, tcb.rcv_nxt)) {
    const uint32_t old = tcb.rcv_nxt - seg.seq;
    if (old >= len) {
      counters_.duplicate_segments.add();
      note_duplicate(tcb, seg.seq, seg.seq + len);
      tcb.ack_now = true;
      return;
    }
    note_duplicate(tcb, seg.seq, tcb.rcv_nxt);
    data += old;
    len -= old;
    offset = 0;
  }
  if (!attach_receive_buffer(tcb)) {
    tcb.ack_now = true;
    return;
  }
  const ReceiveBuffer::InsertResult r = tcb.rcv.insert(offset, data, len);
  if (r.dropped_no_range) tcb.iface->counters().drop(DropReason::tcp_receive_queue_full);
  if (r.duplicate) {
    counters_.duplicate_segments.add();
    note_duplicate(tcb, tcb.rcv_nxt + offset, tcb.rcv_nxt + offset + len);
  }
  if (r.out_of_order) counters_.out_of_order_segments.add();
  if (r.in_order != 0) {
    tcb.rcv_nxt += r.in_order;
    counters_.bytes_in.add(r.in_order);
  }
  // RFC 5681 4.2: immediate ACK for out-of-order data and for data that
  // fills (part of) a hole; otherwise the delayed-ACK rules.
  if (offset != 0 || r.out_of_order || r.duplicate || r.dropped_no_range || r.filled_gap) {
    tcb.ack_now = true;
  } else {
    schedule_ack(tcb, len >= tcb.smss - (tcb.ts_ok ? 12u : 0u), now_us);
  }
}

void TcpStack::note_duplicate(Tcb& tcb, uint32_t left, uint32_t right) noexcept {
  // RFC 2883 4: the first block of the next ACK reports the duplicate, so
  // that the sender learns its retransmission was not needed (RFC 8985
  // widens its reordering window on it).
  if (!tcb.sack_ok || !seq_lt(left, right)) return;
  tcb.dsack_pending = true;
  tcb.dsack_left = left;
  tcb.dsack_right = right;
}

void TcpStack::process_fin(Tcb& tcb, uint64_t now_us) noexcept {
  tcb.rcv_nxt += 1;
  tcb.fin_received = true;
  tcb.ack_now = true;
  switch (tcb.state) {
    case State::syn_received:
    case State::established:
      set_state(tcb, State::close_wait);
      break;
    case State::fin_wait_1:
      if (tcb.fin_acked) {
        enter_time_wait(tcb, now_us);
      } else {
        set_state(tcb, State::closing);
      }
      break;
    case State::fin_wait_2:
      enter_time_wait(tcb, now_us);
      break;
    case State::time_wait:
      schedule(tcb.linger_timer, now_us + config_.time_wait_us);
      break;
    default:
      break;
  }
}

void TcpStack::synchronized_input(Tcb& tcb, const Segment& seg, uint64_t now_us) noexcept {
  Interface& iface = *tcb.iface;
  const ConnHandle h = handle_of(tcb);

  // RFC 7323 5.3: PAWS before anything else.
  if (paws_reject(tcb, seg, now_us)) {
    iface.counters().drop(DropReason::tcp_paws);
    tcb.ack_now = true;
    output(tcb, now_us);
    return;
  }
  // Simultaneous open (RFC 9293 3.5 figure 7): in SYN-RECEIVED the peer's
  // SYN,ACK repeats its SYN, which we already have, and acknowledges ours.
  const bool simultaneous_open = tcb.state == State::syn_received && seg.has(kFlagSyn) &&
                                 seg.has(kFlagAck) && seg.seq == tcb.irs && !tcb.passive;
  // RFC 9293 3.10.7.4: with a zero receive window no segment is
  // acceptable, "but special allowance should be made to accept valid ACKs,
  // URGs, and RSTs": keep the header, drop the text.
  const bool zero_window = tcb.rcv_adv == tcb.rcv_nxt && seg.payload_len != 0;
  if (__builtin_expect(!simultaneous_open && !zero_window, 1)) {
    synchronized_checks(tcb, seg, h, now_us);
    return;
  }
  Segment trimmed = seg;
  if (simultaneous_open) {
    trimmed.flags = static_cast<uint8_t>(trimmed.flags & ~kFlagSyn);
    trimmed.seq = seg.seq + 1;
  }
  if (tcb.rcv_adv == tcb.rcv_nxt && trimmed.seq == tcb.rcv_nxt && trimmed.payload_len != 0) {
    trimmed.payload_len = 0;
    trimmed.flags = static_cast<uint8_t>(trimmed.flags & ~kFlagFin);
    tcb.ack_now = true;
  }
  synchronized_checks(tcb, trimmed, h, now_us);
}

void TcpStack::synchronized_checks(Tcb& tcb, const Segment& seg, ConnHandle h,
                                   uint64_t now_us) noexcept {
  Interface& iface = *tcb.iface;
  // First: sequence number.
  if (!acceptable(tcb, seg)) {
    // A retransmission of data we already have (a lost ACK, a tail-loss
    // probe) is normal traffic, not an attack or a bug: count it apart.
    const bool old = seq_le(seg.seq + seg.seg_len(), tcb.rcv_nxt);
    if (old && seg.payload_len != 0 && !seg.has(kFlagRst)) {
      note_duplicate(tcb, seg.seq, seg.seq + seg.payload_len);
    }
    if (!seg.has(kFlagRst)) {
      if (tcb.state == State::syn_received && seg.has(kFlagSyn) && seg.seq == tcb.irs) {
        // The peer retransmitted its SYN: our SYN-ACK was lost.
        send_segment(tcb, tcb.iss, 0, kFlagSyn | kFlagAck, now_us);
        return;
      }
      tcb.ack_now = true;
      if (tcb.state == State::time_wait && seg.has(kFlagFin)) {
        schedule(tcb.linger_timer, now_us + config_.time_wait_us);
      }
      output(tcb, now_us);
    }
    if (old) {
      counters_.duplicate_segments.add();
    } else {
      iface.counters().drop(DropReason::tcp_out_of_window);
    }
    return;
  }
  // Second: RST (RFC 5961 3.2: only an exact match resets; any other
  // in-window RST earns a challenge ACK).
  if (seg.has(kFlagRst)) {
    if (seg.seq != tcb.rcv_nxt) {
      if (allow_challenge_ack(tcb, now_us)) send_ack_now(tcb, now_us);
      return;
    }
    counters_.resets_received.add();
    // RFC 9293 3.10.7.4: a RST ends TIME-WAIT early (Linux does the same
    // unless tcp_rfc1337 is set). Both FINs were exchanged and acknowledged
    // before it, so the connection ended cleanly: a peer that answers our
    // last ACK with a RST (it had already closed) must not turn a complete
    // exchange into a reset, which a relay would carry to the other side.
    if (tcb.state == State::time_wait) {
      finish_when_read(tcb);
      return;
    }
    // A passive open in SYN-RECEIVED goes back to LISTEN: nothing to tell.
    finish(tcb, CloseReason::reset_by_peer);
    return;
  }
  // Fourth: SYN in a synchronized state (RFC 5961 4.2: challenge ACK).
  if (seg.has(kFlagSyn)) {
    if (allow_challenge_ack(tcb, now_us)) send_ack_now(tcb, now_us);
    return;
  }
  // Fifth: ACK.
  if (!seg.has(kFlagAck)) {
    iface.counters().drop(DropReason::tcp_bad_flags);
    return;
  }
  // RFC 7323 4.3: remember the timestamp of a segment that covers the last
  // ACK we sent.
  if (tcb.ts_ok && seg.options.has_timestamps && seq_le(seg.seq, tcb.last_ack_sent) &&
      !seq_lt(seg.options.ts_value, tcb.ts_recent)) {
    tcb.ts_recent = seg.options.ts_value;
    tcb.ts_recent_us = now_us;
  }
  if (tcb.state == State::syn_received) {
    if (!seq_gt(seg.ack, tcb.snd_una) || seq_gt(seg.ack, tcb.snd_max)) {
      ipv4::Header ip;
      ip.src = tcb.tuple.remote_ip;
      ip.dst = tcb.tuple.local_ip;
      iface.counters().drop(DropReason::tcp_bad_ack);
      send_reset_for(iface, ip, seg);
      return;
    }
    // Our SYN is acknowledged: SND.UNA moves past it before data counts.
    tcb.snd_una = tcb.iss + 1;
    tcb.snd_wnd = uint32_t{seg.window} << tcb.snd_wscale;
    tcb.max_snd_wnd = std::max(tcb.max_snd_wnd, tcb.snd_wnd);
    tcb.snd_wl1 = seg.seq;
    tcb.snd_wl2 = seg.ack;
    take_rtt_sample(tcb, seg, now_us);
    stop_retransmit_timer(tcb);
    if (tcb.retries != 0) tcb.rtt.restart_after_syn_timeout();
    tcb.retries = 0;
    establish(tcb, now_us);
    if (get(h) == nullptr) return;
  }
  if (!process_ack(tcb, seg, now_us)) {
    output(tcb, now_us);
    return;
  }
  switch (tcb.state) {
    case State::fin_wait_1:
      if (tcb.fin_acked) {
        set_state(tcb, State::fin_wait_2);
        if (tcb.read_closed) schedule(tcb.linger_timer, now_us + config_.fin_wait_2_timeout_us);
      }
      break;
    case State::closing:
      if (tcb.fin_acked) enter_time_wait(tcb, now_us);
      break;
    case State::last_ack:
      if (tcb.fin_acked) {
        finish_when_read(tcb);
        return;
      }
      break;
    default:
      break;
  }
  const bool writable =
      tcb.want_writable && (tcb.snd_buffer == UINT32_MAX ? !free_buffers_.empty() : tcb.snd.free_space() != 0);

  // Seventh: segment text.
  const uint32_t readable_before = tcb.rcv.readable();
  switch (tcb.state) {
    case State::established:
    case State::fin_wait_1:
    case State::fin_wait_2:
      process_data(tcb, seg, now_us);
      if (get(h) == nullptr) return;
      break;
    default:
      break;
  }
  // Eighth: FIN, once everything before it has arrived.
  bool fin_now = false;
  if (seg.has(kFlagFin) && !tcb.fin_received && seq_gt(seg.seq + seg.payload_len, tcb.rcv_nxt)) {
    // A FIN beyond a hole waits with the out-of-order data before it.
    tcb.pending_fin = true;
    tcb.pending_fin_seq = seg.seq + seg.payload_len;
  }
  if (seg.has(kFlagFin) && seg.seq + seg.payload_len == tcb.rcv_nxt && !tcb.fin_received) {
    process_fin(tcb, now_us);
    fin_now = true;
  } else if (tcb.pending_fin && !tcb.fin_received && tcb.pending_fin_seq == tcb.rcv_nxt) {
    process_fin(tcb, now_us);
    fin_now = true;
  } else if (seg.has(kFlagFin)) {
    tcb.ack_now = true;  // out of order or repeated FIN: ACK what we have
    // RFC 9293 3.10.7.4: a retransmitted FIN restarts TIME-WAIT.
    if (tcb.state == State::time_wait) schedule(tcb.linger_timer, now_us + config_.time_wait_us);
  }

  notify_and_output(tcb, h, readable_before, writable, fin_now, now_us);
}

void TcpStack::notify_and_output(Tcb& tcb, ConnHandle h, uint32_t readable_before, bool writable,
                                 bool fin_now, uint64_t now_us) noexcept {
  // The application last: it may send, close or abort from its callbacks.
  if (tcb.app != nullptr && !tcb.read_closed && tcb.rcv.readable() > readable_before) {
    tcb.app->on_readable(*this, h);
    if (get(h) == nullptr) return;
  }
  if (fin_now) {
    tcb.fin_told = true;
    if (tcb.app != nullptr) {
      tcb.app->on_peer_closed(*this, h);
      if (get(h) == nullptr) return;
    }
  }
  if (writable && tcb.app != nullptr) {
    tcb.want_writable = false;
    tcb.app->on_writable(*this, h);
    if (get(h) == nullptr) return;
  }
  if (tcb.state == State::time_wait) notify_complete(tcb);
  output(tcb, now_us);
  // Giving buffers back on every segment of a bulk transfer costs ~100
  // instructions per segment (perf/tcp_bench): do it when the pool runs low
  // or the connection is winding down.
  if (free_buffers_.size() < config_.buffer_pool / 4 || tcb.state >= State::close_wait) {
    detach_buffers_if_idle(tcb);
  }
}

bool TcpStack::predicted_input(Tcb& tcb, const Segment& seg, uint64_t now_us) noexcept {
  // Header prediction (Van Jacobson's, as in BSD and Linux): in a bulk
  // transfer nearly every segment is either the next in-order text with
  // nothing new acknowledged, or a pure ACK of new data, on an ESTABLISHED
  // connection whose window did not change. For these the general path
  // (synchronized_input) runs some forty tests whose outcome is known; here
  // the conditions below decide, and the work left is exactly what the
  // general path does for such a segment, through the same functions. Any
  // other segment, or these in another situation, goes the general way:
  // this function changes nothing before it returns true.
  //
  // - ESTABLISHED, flags ACK (PSH allowed): no SYN, FIN, RST, URG or ECN bit
  //   that a later step of RFC 9293 3.10.7.4 would act on.
  // - SEG.SEQ = RCV.NXT: acceptable (3.10.7.4 first check; the window test
  //   below covers the text), no trimming, nothing out of order.
  // - No SACK blocks (process_sack would have work), no recovery of either
  //   kind, no FIN waiting beyond a hole.
  // - SEG.WND, scaled, is SND.WND: the window update stores what is there.
  // - Timestamps, when negotiated, present and TSval >= TS.Recent: PAWS
  //   (RFC 7323 5.3) lets it through without the one-tick allowance or the
  //   24-day rule, and the TS.Recent update of RFC 7323 4.3 depends only on
  //   SEG.SEQ <= Last.ACK.sent.
  if (tcb.state != State::established || (seg.flags & ~kFlagPsh) != kFlagAck ||
      seg.seq != tcb.rcv_nxt || seg.options.sack_count != 0 || tcb.in_recovery ||
      tcb.rto_recovery || tcb.pending_fin ||
      (uint32_t{seg.window} << tcb.snd_wscale) != tcb.snd_wnd) {
    return false;
  }
  if (tcb.ts_ok && (!seg.options.has_timestamps || seq_lt(seg.options.ts_value, tcb.ts_recent))) {
    return false;
  }
  // RFC 5961 5.2's range, as process_ack tests it (SND.UNA - MAX.SND.WND <=
  // SEG.ACK <= SND.MAX): outside it the general path drops the segment.
  if (seq_gt(seg.ack, tcb.snd_max) ||
      seq_lt(seg.ack, tcb.snd_una - std::max<uint32_t>(tcb.max_snd_wnd, 1))) {
    return false;
  }
  const bool text = seg.payload_len != 0;
  if (text) {
    // In-order text that acknowledges nothing new. A nonzero offered
    // window makes it acceptable; a receive buffer without islands takes it
    // with the plain append (no out-of-order, duplicate or gap-filling
    // outcome: the delayed-ACK rules apply); an application that closed
    // its reading side gets the general path's reset.
    if (seg.ack != tcb.snd_una || !seq_gt(tcb.rcv_adv, tcb.rcv_nxt) || tcb.read_closed ||
        tcb.rcv_buffer == UINT32_MAX || tcb.rcv.range_count() != 0) {
      return false;
    }
  } else if (!seq_gt(seg.ack, tcb.snd_una)) {
    // A pure ACK must acknowledge new data: a duplicate ACK counts towards
    // fast retransmit, which is the general path's business.
    return false;
  }
  predicted_segments_ += 1;
  const ConnHandle h = handle_of(tcb);
  // RFC 7323 4.3, as in synchronized_checks (TSval >= TS.Recent holds).
  if (tcb.ts_ok && seq_le(seg.seq, tcb.last_ack_sent)) {
    tcb.ts_recent = seg.options.ts_value;
    tcb.ts_recent_us = now_us;
  }
  // process_ack for an acceptable ACK without SACK blocks, outside any
  // recovery.
  const bool rack = rack_mode(tcb);
  const bool acked_new = !text;
  if (acked_new) {
    if (rack) tcb.rack.on_cumulative_ack(seg.ack, now_us);
    acknowledge(tcb, seg, rack, now_us);
  }
  update_send_window(tcb, seg, acked_new);
  if (rack) rack_after_ack(tcb, seg, SackBlock{0, 0}, acked_new, now_us);
  if (tcb.snd_wnd == 0) tcb.retries = 0;

  const bool writable =
      tcb.want_writable && (tcb.snd_buffer == UINT32_MAX ? !free_buffers_.empty() : tcb.snd.free_space() != 0);
  const uint32_t readable_before = tcb.rcv.readable();
  if (text) {
    // process_data's in-order case: offset 0 and no islands, so the result
    // is the plain append (possibly trimmed to the buffer) and RFC 5681
    // 4.2's delayed-ACK rules decide.
    const ReceiveBuffer::InsertResult r = tcb.rcv.insert(0, seg.payload, seg.payload_len);
    if (r.in_order != 0) {
      tcb.rcv_nxt += r.in_order;
      counters_.bytes_in.add(r.in_order);
    }
    schedule_ack(tcb, seg.payload_len >= tcb.smss - (tcb.ts_ok ? 12u : 0u), now_us);
  }
  notify_and_output(tcb, h, readable_before, writable, false, now_us);
  return true;
}

}  // namespace mtlsgw::net::tcp
