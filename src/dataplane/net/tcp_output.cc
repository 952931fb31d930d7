// Segment departure: what to send, when, and how it is built (RFC 9293 3.8,
// RFC 5681/6582/6675 for what congestion and loss allow).

#include <algorithm>
#include <cstring>

#include "dataplane/net/ethernet.h"
#include "dataplane/net/interface.h"
#include "dataplane/net/tcp_seq.h"
#include "dataplane/net/tcp_stack.h"

namespace mtlsgw::net::tcp {
namespace {

constexpr uint16_t kHeadersBeforeTcp = ethernet::kHeaderLen + ipv4::kMinHeaderLen;

}  // namespace

uint32_t TcpStack::ts_clock(uint64_t now_us) const noexcept {
  // RFC 7323 5.4: a clock between 1 ms and 1 s per tick; 1 ms keeps RTT
  // samples from timestamps precise enough for the RTO.
  return static_cast<uint32_t>(now_us / 1000);
}

uint32_t TcpStack::receive_window(const Tcb& tcb) const noexcept {
  if (tcb.rcv_buffer != UINT32_MAX) return tcb.rcv.free_space();
  // No buffer yet: the one we would take on the first byte.
  return free_buffers_.empty() ? 0 : config_.buffer_size;
}

bool TcpStack::send_segment(Tcb& tcb, uint32_t seq, uint32_t len, uint8_t flags, uint64_t now_us,
                            uint32_t* sent_len) noexcept {
  if (sent_len != nullptr) *sent_len = 0;
  Interface& iface = *tcb.iface;
  Frame frame;
  if (!iface.io().alloc(frame)) {
    iface.counters().drop(DropReason::tx_no_buffer);
    return false;
  }
  const bool syn = (flags & kFlagSyn) != 0;
  Options options;
  if (syn) {
    options.mss = config_.mss;
    // Active opens offer everything; a passive one answers what was offered
    // (RFC 7323 1.3, RFC 2018 2).
    const bool offer_all = !tcb.passive;
    if (offer_all || tcb.wscale_ok) {
      options.has_window_scale = true;
      options.window_scale = tcb.rcv_wscale;
    }
    options.sack_permitted = offer_all || tcb.sack_ok;
    if (offer_all || tcb.ts_ok) {
      options.has_timestamps = true;
      options.ts_value = ts_clock(now_us);
      options.ts_echo = tcb.passive ? tcb.ts_recent : 0;
    }
  } else {
    if (tcb.ts_ok) {
      options.has_timestamps = true;
      options.ts_value = ts_clock(now_us);
      options.ts_echo = tcb.ts_recent;
    }
    if (tcb.sack_ok && (flags & kFlagAck) != 0) {
      uint8_t n = 0;
      if (tcb.dsack_pending) {
        // RFC 2883 4: a D-SACK goes first, in one ACK only.
        options.sack[n++] = SackBlock{tcb.dsack_left, tcb.dsack_right};
        tcb.dsack_pending = false;
        counters_.dsack_sent.add();
      }
      if (tcb.rcv_buffer != UINT32_MAX && tcb.rcv.out_of_order_bytes() != 0) {
        uint32_t ranges[kMaxSackBlocks][2];
        const uint8_t k = tcb.rcv.sack_ranges(ranges, static_cast<uint8_t>(kMaxSackBlocks - n));
        for (uint8_t i = 0; i < k; ++i) {
          options.sack[n + i] = SackBlock{tcb.rcv_nxt + ranges[i][0], tcb.rcv_nxt + ranges[i][1]};
        }
        n = static_cast<uint8_t>(n + k);
      }
      options.sack_count = n;
    }
  }
  const uint16_t header_len = static_cast<uint16_t>(kMinHeaderLen + options_length(options));
  // RFC 6691: the MSS counts payload only; options come out of it.
  const uint32_t max_payload = tcb.smss > header_len - kMinHeaderLen
                                   ? tcb.smss - (header_len - kMinHeaderLen)
                                   : 1;
  if (len > max_payload) {
    len = max_payload;
    flags &= static_cast<uint8_t>(~kFlagFin);  // the FIN follows the last byte
  }
  const uint16_t tcp_len = static_cast<uint16_t>(header_len + len);
  if (!frame.append(static_cast<uint16_t>(kHeadersBeforeTcp + tcp_len))) {
    iface.drop(frame, DropReason::tx_no_buffer);
    return false;
  }
  uint8_t* const ip = frame.data + ethernet::kHeaderLen;
  uint8_t* const segment = ip + ipv4::kMinHeaderLen;

  uint32_t window = receive_window(tcb);
  // Never shrink the window we already offered, and move its right edge
  // only by a useful amount: min(half the buffer, one segment) (receiver
  // SWS avoidance, RFC 9293 3.8.6.2.2).
  const uint32_t offered = seq_gt(tcb.rcv_adv, tcb.rcv_nxt) ? tcb.rcv_adv - tcb.rcv_nxt : 0;
  if (window <= offered ||
      window - offered < std::min<uint32_t>(config_.buffer_size / 2, tcb.smss)) {
    window = std::min(offered, std::max(window, offered));
  }
  const uint32_t field = syn ? std::min<uint32_t>(window, 0xffff)  // RFC 7323 2.2: SYNs unscaled
                             : std::min<uint32_t>(window >> tcb.rcv_wscale, 0xffff);
  HeaderFields fields;
  fields.src_port = tcb.tuple.local_port;
  fields.dst_port = tcb.tuple.remote_port;
  fields.seq = seq;
  fields.ack = (flags & kFlagAck) != 0 ? tcb.rcv_nxt : 0;
  fields.flags = flags;
  fields.window = static_cast<uint16_t>(field);
  uint16_t payload_sum = 0;
  if (len != 0) {
    // Data offset: byte 0 of the send buffer is SND.UNA (the SYN is acked
    // before any data goes out). Summed while copied: one pass over it.
    tcb.snd.copy_out(seq - tcb.snd_una, segment + header_len, len, payload_sum);
  }
  write_header(segment, fields, options, static_cast<uint16_t>(len), payload_sum, tcb.tuple.local_ip,
               tcb.tuple.remote_ip);
  ipv4::write_header(ip, tcb.tuple.local_ip, tcb.tuple.remote_ip, ipv4::kProtocolTcp, tcp_len, 0);

  const uint32_t seg_len = len + (syn ? 1 : 0) + ((flags & kFlagFin) != 0 ? 1 : 0);
  counters_.segments_out.add();
  counters_.bytes_out.add(len);
  if (seg_len != 0 && seq_lt(seq, tcb.snd_max)) counters_.retransmitted_segments.add();
  if ((flags & kFlagAck) != 0) {
    tcb.last_ack_sent = tcb.rcv_nxt;
    tcb.ack_now = false;
    tcb.unacked_full_segments = 0;
    cancel(tcb.delayed_ack_timer);
    const uint32_t advertised = syn ? field : field << tcb.rcv_wscale;
    if (seq_gt(tcb.rcv_nxt + advertised, tcb.rcv_adv)) tcb.rcv_adv = tcb.rcv_nxt + advertised;
  }
  if (seg_len != 0) {
    // Karn's algorithm: only time new data, never a retransmission
    // (RFC 6298 3); with timestamps every ACK gives a sample instead.
    if (!tcb.ts_ok && !tcb.rtt_timing && seq == tcb.snd_max) {
      tcb.rtt_timing = true;
      tcb.rtt_seq = seq;
      tcb.rtt_start_us = now_us;
    }
    if (tcb.sack_ok && !syn) tcb.rack.on_transmit(seq, seg_len, now_us, tcb.snd_max);
    if (seq_gt(seq + seg_len, tcb.snd_max)) tcb.snd_max = seq + seg_len;
    if (tcb.rto_at_us == 0) restart_retransmit_timer(tcb);
  }
  tcb.last_sent_us = now_us;
  if (sent_len != nullptr) *sent_len = len;
  iface.output_ipv4(frame, tcb.tuple.remote_ip, now_us);
  return true;
}

void TcpStack::restart_retransmit_timer(Tcb& tcb) noexcept {
  tcb.rto_at_us = now_us_ + tcb.rtt.rto_us();
  arm_retransmit_timer(tcb);
}

void TcpStack::stop_retransmit_timer(Tcb& tcb) noexcept {
  tcb.rto_at_us = tcb.pto_at_us = tcb.reorder_at_us = 0;
  cancel(tcb.retransmit_timer);
}

void TcpStack::arm_retransmit_timer(Tcb& tcb) noexcept {
  // The earliest deadline set; 0 (unset) wraps to the largest value.
  const uint64_t at =
      std::min({tcb.rto_at_us - 1, tcb.pto_at_us - 1, tcb.reorder_at_us - 1}) + 1;
  if (at == 0) {
    cancel(tcb.retransmit_timer);
  } else if (!tcb.retransmit_timer.node.armed() || tcb.retransmit_timer.node.expires_us > at) {
    schedule(tcb.retransmit_timer, at);
  }
  // A node armed for an earlier time is left alone: it fires, finds nothing
  // due and is armed again for the real deadline (on_retransmit_timer).
  // The deadlines move later on nearly every ACK and new segment (RFC 6298
  // 5.3, RFC 8985 7.2): following each would be a wheel operation per
  // segment, where this costs one extra expiry per probe timeout.
}

void TcpStack::on_retransmit_timer(Tcb& tcb, uint64_t now_us) noexcept {
  const ConnHandle h = handle_of(tcb);
  if (tcb.reorder_at_us != 0 && tcb.reorder_at_us <= now_us) {
    // RFC 8985 6.3: the reordering window of a waiting segment has passed.
    tcb.reorder_at_us = 0;
    rack_detect_losses(tcb, now_us);
    output(tcb, now_us);
    // The probe waited for this timer (rack_detect_losses).
    if (Tcb* still = get(h); still != nullptr && still->pto_at_us == 0) schedule_loss_probe(*still, now_us);
  } else if (tcb.pto_at_us != 0 && tcb.pto_at_us <= now_us) {
    tcb.pto_at_us = 0;
    send_loss_probe(tcb, now_us);
  } else if (tcb.rto_at_us != 0 && tcb.rto_at_us <= now_us) {
    tcb.rto_at_us = 0;
    retransmit_timeout(tcb, now_us);
  }
  if (Tcb* still = get(h)) arm_retransmit_timer(*still);
}

void TcpStack::schedule_loss_probe(Tcb& tcb, uint64_t now_us) noexcept {
  // RFC 8985 7.2: a probe is for a connection with data in flight, one at a
  // time, and not while RACK's own timer runs. Unlike RFC 8985 (which
  // leaves recoveries to the RTO), also during a recovery: measured against
  // Linux under loss both ways, every RTO left came from a recovery whose
  // last ACKs were lost while the peer, stalled by our full receive window,
  // had nothing to send: the ACK clock stopped with nothing to restart it
  // but a 200 ms timer. A probe then costs one segment; QUIC's PTO (RFC
  // 9002 6.2) runs in every state for the same reason.
  const bool allowed = rack_mode(tcb) && tcb.rack.probes_sent() < Rack::kMaxProbes &&
                       tcb.snd_una != tcb.snd_max && tcb.reorder_at_us == 0 && tcb.snd_wnd != 0;
  if (!allowed) {
    tcb.pto_at_us = 0;
    return;
  }
  // PTO = 2 SRTT, plus the receiver's worst-case delayed ACK when one
  // segment is in flight; 1 s before any RTT sample. Linux adds 2 ticks
  // (TCP_TIMEOUT_MIN) for the same reason we add kGranularityUs twice: the
  // probe should not race an ACK already on its way.
  uint64_t pto = tcb.rtt.has_sample()
                     ? 2 * uint64_t{tcb.rtt.srtt_us()} + 2 * RttEstimator::kGranularityUs
                     : 1'000'000;
  if (tcb.flight_size() <= tcb.payload_mss()) pto += config_.tlp_max_ack_delay_us;
  pto <<= tcb.rack.probes_sent();  // the second probe waits twice as long
  // When the RTO would come first, the probe takes its place: a probe
  // costs one segment, a timeout the whole window.
  uint64_t at = now_us + pto;
  if (tcb.rto_at_us != 0 && tcb.rto_at_us < at) at = tcb.rto_at_us;
  tcb.pto_at_us = at;
}

void TcpStack::send_loss_probe(Tcb& tcb, uint64_t now_us) noexcept {
  if (!rack_mode(tcb) || tcb.snd_una == tcb.snd_max) {
    if (tcb.snd_una != tcb.snd_max && tcb.rto_at_us == 0) restart_retransmit_timer(tcb);
    return;
  }
  // RFC 8985 7.3: new data if the peer's window has room for it (it may
  // reveal more than a resent segment would), else the last segment. In a
  // recovery, and for a second probe, always the last segment not SACKed:
  // its ACK brings the receiver's whole SACK state (and comes at once: a
  // duplicate), where new data would only add a segment for RACK to call
  // the others lost by, or wait for a delayed ACK.
  const bool resend = tcb.in_recovery || tcb.rto_recovery || tcb.rack.probes_sent() != 0;
  const uint32_t data_end = tcb.snd_una + tcb.snd.size();
  const uint32_t edge = tcb.snd_una + tcb.snd_wnd;
  uint32_t start = tcb.snd_nxt;
  bool sent_new = false;
  if (!resend && seq_lt(tcb.snd_nxt, data_end) && seq_lt(tcb.snd_nxt, edge) &&
      tcb.snd_nxt == tcb.snd_max && tcb.rack.can_log_new()) {
    const uint32_t len = std::min({data_end - tcb.snd_nxt, edge - tcb.snd_nxt, tcb.payload_mss()});
    const uint8_t flags = len == data_end - tcb.snd_nxt ? kFlagAck | kFlagPsh : kFlagAck;
    uint32_t sent = 0;
    if (send_segment(tcb, tcb.snd_nxt, len, flags, now_us, &sent) && sent != 0) {
      tcb.snd_nxt += sent;
      sent_new = true;
    }
  }
  if (!sent_new) {
    uint32_t len = 0;
    if (!tcb.rack.last_unsacked(&start, &len) || !retransmit_range(tcb, start, len, now_us)) {
      restart_retransmit_timer(tcb);
      return;
    }
  }
  counters_.tlp_probes.add();
  tcb.rack.on_probe_sent(start, tcb.snd_max, !sent_new);
  // RFC 8985 7.3: the RTO guards the probe (and a second probe may come
  // first, see Rack::kMaxProbes).
  restart_retransmit_timer(tcb);
  schedule_loss_probe(tcb, now_us);
}

bool TcpStack::retransmit_range(Tcb& tcb, uint32_t seq, uint32_t len, uint64_t now_us) noexcept {
  const uint32_t data_end = tcb.snd_una + tcb.snd.size();
  uint32_t data_len = len;
  uint8_t flags = kFlagAck;
  if (tcb.fin_queued && seq_gt(seq + len, data_end)) {
    // The segment ended with our FIN (which holds no byte of the buffer).
    data_len = seq_lt(seq, data_end) ? data_end - seq : 0;
    flags |= kFlagFin;
  } else if (seq + len == data_end) {
    flags |= kFlagPsh;
  }
  return send_segment(tcb, seq, data_len, flags, now_us);
}

void TcpStack::send_ack_now(Tcb& tcb, uint64_t now_us) noexcept {
  if (tcb.state == State::syn_received) {
    // Our "ACK" in SYN-RECEIVED is the SYN-ACK again.
    send_segment(tcb, tcb.iss, 0, kFlagSyn | kFlagAck, now_us);
    return;
  }
  send_segment(tcb, tcb.snd_max, 0, kFlagAck, now_us);
}

void TcpStack::schedule_ack(Tcb& tcb, bool full_segment, uint64_t now_us) noexcept {
  // RFC 9293 3.8.6.3 / RFC 5681 4.2: ACK at least every second full-size
  // segment, otherwise within the delayed-ACK timeout.
  if (full_segment && ++tcb.unacked_full_segments >= 2) {
    tcb.ack_now = true;
    return;
  }
  if (!tcb.delayed_ack_timer.node.armed()) schedule(tcb.delayed_ack_timer, now_us + config_.delayed_ack_us);
  if (!full_segment) tcb.unacked_full_segments = std::max<uint8_t>(tcb.unacked_full_segments, 1);
}

void TcpStack::output(Tcb& tcb, uint64_t now_us) noexcept {
  switch (tcb.state) {
    case State::established:
    case State::close_wait:
    case State::fin_wait_1:
    case State::closing:
    case State::last_ack:
      break;
    default:
      if (tcb.ack_now && tcb.state != State::closed && tcb.state != State::syn_sent) send_ack_now(tcb, now_us);
      return;
  }
  const uint32_t data_end = tcb.snd_una + tcb.snd.size();
  const bool fin_pending = tcb.fin_queued && !tcb.fin_acked;
  const bool rack = rack_mode(tcb);
  if (tcb.snd_nxt == data_end && !fin_pending && !(rack && tcb.rack.lost_bytes() != 0)) {
    // Nothing unsent, no FIN, nothing deemed lost: what a receiver, or a
    // sender whose ACKs have caught up, calls this for on every segment
    // (perf/tcp_bench: about 40 instructions less per call than the general
    // walk below, which would reach the same two steps).
    if (tcb.snd.size() != 0 && tcb.snd_una == tcb.snd_max && tcb.rto_at_us == 0) {
      restart_retransmit_timer(tcb);
    }
    if (tcb.ack_now) send_ack_now(tcb, now_us);
    return;
  }
  bool sent_any = false;
  // RFC 5681 4.1: after an idle period longer than the RTO, restart from
  // the restart window rather than bursting a stale cwnd.
  if (tcb.snd_una == tcb.snd_max && tcb.snd_nxt != data_end && tcb.last_sent_us != 0 &&
      now_us - tcb.last_sent_us > tcb.rtt.rto_us()) {
    tcb.cc.on_idle_restart(now_us - tcb.last_sent_us, tcb.rtt.rto_us());
  }

  // RFC 6675 5 (C) with RACK's verdicts (RFC 8985 6): segments deemed lost
  // go first, lowest first, while cwnd - pipe holds a segment and the
  // peer's window has room for where they start.
  if (rack && tcb.rack.lost_bytes() != 0) {
    for (int guard = 0; guard < 64; ++guard) {
      uint32_t seq = 0;
      uint32_t len = 0;
      if (!tcb.rack.first_lost(&seq, &len)) break;
      if (tcb.rack.pipe(tcb.snd_una, tcb.snd_max) + tcb.payload_mss() > tcb.cc.cwnd()) break;
      if (tcb.snd_wnd == 0 || !seq_lt(seq, tcb.snd_una + tcb.snd_wnd)) break;
      if (!retransmit_range(tcb, seq, len, now_us)) break;
      sent_any = true;
    }
  }
  bool sent_new = false;

  // New data (and the FIN) within min(cwnd, peer window).
  for (int guard = 0; guard < 256; ++guard) {
    if (seq_lt(tcb.snd_nxt, tcb.snd_una)) tcb.snd_nxt = tcb.snd_una;
    const uint32_t unsent = seq_lt(tcb.snd_nxt, data_end) ? data_end - tcb.snd_nxt : 0;
    const bool fin_now = fin_pending && unsent == 0 && tcb.snd_nxt == data_end;
    if (unsent == 0 && !fin_now) break;
    uint32_t room;
    if (rack) {
      // RFC 6675 5 step (C): with SACK cwnd limits the pipe, not SND.NXT -
      // SND.UNA (SACKed data has left the network, and so has what RACK
      // deems lost).
      if (!tcb.rack.can_log_new()) break;
      const uint32_t pipe = tcb.rack.pipe(tcb.snd_una, tcb.snd_max);
      const uint32_t cwnd_room = tcb.cc.cwnd() > pipe ? tcb.cc.cwnd() - pipe : 0;
      const uint32_t edge = tcb.snd_una + tcb.snd_wnd;
      const uint32_t window_room = seq_gt(edge, tcb.snd_nxt) ? edge - tcb.snd_nxt : 0;
      room = std::min(cwnd_room, window_room);
    } else {
      const uint32_t window = std::min(tcb.snd_wnd, tcb.cc.cwnd());
      const uint32_t in_flight = tcb.snd_nxt - tcb.snd_una;
      room = window > in_flight ? window - in_flight : 0;
    }
    uint32_t len = std::min(unsent, room);
    if (unsent != 0) {
      if (len == 0) break;  // window closed: the persist timer probes
      // Sender SWS avoidance without Nagle (RFC 9293 3.8.6.2.1): full
      // segments, or the tail of what is queued, or half the largest window
      // the peer ever offered. Latency matters more than tinygrams here.
      // A retransmission (below SND.MAX) is never held back: RFC 6298 5.4
      // wants the earliest unacknowledged segment sent on every expiry.
      if (len < tcb.smss && len < unsent && len < tcb.max_snd_wnd / 2 &&
          !seq_lt(tcb.snd_nxt, tcb.snd_max)) {
        break;
      }
    }
    uint8_t flags = kFlagAck;
    if (len == unsent && fin_pending && len <= tcb.smss) flags |= kFlagFin;
    if (len != 0 && len == unsent) flags |= kFlagPsh;
    // send_segment trims len to one segment (and then leaves the FIN off).
    uint32_t sent = 0;
    if (!send_segment(tcb, tcb.snd_nxt, len, flags, now_us, &sent)) break;
    tcb.snd_nxt += sent;
    const bool fin_sent = (flags & kFlagFin) != 0 && sent == len;
    if (fin_sent) {
      tcb.snd_nxt += 1;
      if (tcb.state == State::established) set_state(tcb, State::fin_wait_1);
      else if (tcb.state == State::close_wait) set_state(tcb, State::last_ack);
    }
    sent_any = true;
    sent_new = true;
    if (fin_sent) break;
  }
  // RFC 8985 7.2: new data (re)starts the probe timeout; in a recovery any
  // transmission does.
  if (rack && (sent_new || (sent_any && (tcb.in_recovery || tcb.rto_recovery)))) {
    schedule_loss_probe(tcb, now_us);
    arm_retransmit_timer(tcb);
  }

  // Data waiting, nothing in flight, nothing sent: the window is closed or
  // too small for SWS avoidance. The persist timer probes it (RFC 9293
  // 3.8.6.1) or overrides the avoidance (3.8.6.2.1), so it never stalls.
  if (!sent_any && tcb.snd.size() != 0 && tcb.snd_una == tcb.snd_max && tcb.rto_at_us == 0) {
    restart_retransmit_timer(tcb);
  }
  if (tcb.ack_now) send_ack_now(tcb, now_us);
}

void TcpStack::retransmit_timeout(Tcb& tcb, uint64_t now_us) noexcept {
  counters_.rto_expirations.add();
  switch (tcb.state) {
    case State::syn_sent:
    case State::syn_received:
      if (++tcb.retries > config_.max_syn_retries) {
        finish(tcb, CloseReason::timed_out);
        return;
      }
      // Karn: the answer may be to either SYN, so no sample from it.
      tcb.rtt_timing = false;
      tcb.rtt.backoff();
      send_segment(tcb, tcb.iss, 0, tcb.state == State::syn_sent ? kFlagSyn : kFlagSyn | kFlagAck,
                   now_us);
      restart_retransmit_timer(tcb);
      return;
    case State::closed:
    case State::time_wait:
    case State::fin_wait_2:
    case State::close_wait:
      if (tcb.snd_una == tcb.snd_max && tcb.snd.size() == 0) return;
      break;
    default:
      break;
  }
  if (tcb.snd_wnd == 0 && tcb.snd.size() != 0) {
    // The peer closed its window with data outstanding or queued: that is
    // flow control, not loss. Probe (below) without giving up as long as
    // the peer answers (RFC 9293 3.8.6.1), and resend from SND.UNA once
    // the window opens (with SACK: what is in flight is marked lost, and
    // recovery resends it in order).
    if (rack_mode(tcb)) {
      tcb.rack.on_rto();
      tcb.rack.cancel_probe();
    } else {
      tcb.snd_nxt = tcb.snd_una;
    }
  }
  if ((tcb.snd_wnd == 0 || tcb.snd_una == tcb.snd_max) && tcb.snd.size() != 0) {
    if (tcb.snd_wnd == 0) {
      // Zero-window probe: an out-of-window ACK (SEG.SEQ = SND.UNA - 1)
      // makes the peer answer with its current window; probing continues as
      // long as the peer answers (RFC 9293 3.8.6.1), with backoff.
      // Any ACK from the peer resets retries (process_ack): only a peer
      // that stopped answering is given up on.
      if (++tcb.retries > config_.max_retries) {
        send_reset(tcb);
        finish(tcb, CloseReason::timed_out);
        return;
      }
      counters_.zero_window_probes.add();
      send_segment(tcb, tcb.snd_una - 1, 0, kFlagAck, now_us);
      tcb.rtt.backoff();
      restart_retransmit_timer(tcb);
      return;
    }
    // A window too small for SWS avoidance: send what fits now.
    uint32_t sent = 0;
    const uint32_t len = std::min({tcb.snd_wnd, tcb.snd.size(), uint32_t{tcb.smss}});
    if (send_segment(tcb, tcb.snd_nxt, len, kFlagAck | kFlagPsh, now_us, &sent)) tcb.snd_nxt += sent;
    restart_retransmit_timer(tcb);
    return;
  }
  if (tcb.snd_una == tcb.snd_max) return;
  if (++tcb.retries > config_.max_retries) {
    send_reset(tcb);
    finish(tcb, CloseReason::timed_out);
    return;
  }
  // RFC 6298 5.4-5.6 and RFC 5681 3.1: back off, restart from SND.UNA with
  // a loss window.
  tcb.cc.on_rto(tcb.flight_size(), now_us);
  tcb.rtt.backoff();
  tcb.rtt_timing = false;
  if (tcb.in_recovery || tcb.rto_recovery) tcb.rack.on_recovery_end();
  tcb.in_recovery = false;
  tcb.dupacks = 0;
  tcb.recover = tcb.snd_max;
  if (rack_mode(tcb)) {
    // RFC 2018 8 / RFC 8985 6.3: the SACK information may be stale (a
    // reneging receiver): everything in flight is lost, resent in order.
    tcb.rack.on_rto();
    tcb.rack.cancel_probe();
    tcb.rto_recovery = true;
  } else {
    tcb.snd_nxt = tcb.snd_una;
  }
  tcb.pto_at_us = tcb.reorder_at_us = 0;
  restart_retransmit_timer(tcb);
  output(tcb, now_us);
}

void TcpStack::send_reset(Tcb& tcb) noexcept {
  // RFC 9293 3.10.4 (ABORT): <SEQ=SND.NXT><CTL=RST>.
  counters_.resets_sent.add();
  send_segment(tcb, tcb.snd_max, 0, kFlagRst, now_us_);
}

void TcpStack::send_reset_for(Interface& iface, const ipv4::Header& ip, const Segment& seg) noexcept {
  if (seg.has(kFlagRst)) return;  // never answer a reset (RFC 9293 3.10.7.1)
  Frame frame;
  if (!iface.io().alloc(frame)) {
    iface.counters().drop(DropReason::tx_no_buffer);
    return;
  }
  if (!frame.append(kHeadersBeforeTcp + kMinHeaderLen)) {
    iface.drop(frame, DropReason::tx_no_buffer);
    return;
  }
  HeaderFields fields;
  fields.src_port = seg.dst_port;
  fields.dst_port = seg.src_port;
  fields.window = 0;
  if (seg.has(kFlagAck)) {
    fields.seq = seg.ack;
    fields.ack = 0;
    fields.flags = kFlagRst;
  } else {
    fields.seq = 0;
    fields.ack = seg.seq + seg.seg_len();
    fields.flags = kFlagRst | kFlagAck;
  }
  uint8_t* const ip_header = frame.data + ethernet::kHeaderLen;
  uint8_t* const segment = ip_header + ipv4::kMinHeaderLen;
  write_header(segment, fields, Options{});
  write_checksum(segment, kMinHeaderLen, ip.dst, ip.src);
  ipv4::write_header(ip_header, ip.dst, ip.src, ipv4::kProtocolTcp, kMinHeaderLen, 0);
  counters_.resets_sent.add();
  counters_.segments_out.add();
  iface.output_ipv4(frame, ip.src, now_us_);
}

void TcpStack::send_cookie_syn_ack(Interface& iface, const ipv4::Header& ip, const Segment& seg,
                                   uint64_t now_us) noexcept {
  Frame frame;
  if (!iface.io().alloc(frame)) {
    iface.counters().drop(DropReason::tx_no_buffer);
    return;
  }
  const FourTuple tuple{ip.dst, seg.dst_port, ip.src, seg.src_port};
  Options options;
  options.mss = config_.mss;
  const uint8_t our_shift = window_shift_for(config_.buffer_size);
  if (seg.options.has_window_scale) {
    options.has_window_scale = true;
    options.window_scale = our_shift;
  }
  // Without timestamps there is nowhere to remember window scaling or SACK
  // (RFC 4987 3.6: cookies lose options): both are then left out.
  if (seg.options.has_timestamps) {
    options.has_timestamps = true;
    options.sack_permitted = seg.options.sack_permitted;
    options.ts_value = cookies_.encode_ts(ts_clock(now_us),
                                          seg.options.has_window_scale ? seg.options.window_scale : 15,
                                          seg.options.sack_permitted);
    options.ts_echo = seg.options.ts_value;
  } else {
    options.has_window_scale = false;
  }
  const uint16_t header_len = static_cast<uint16_t>(kMinHeaderLen + options_length(options));
  if (!frame.append(static_cast<uint16_t>(kHeadersBeforeTcp + header_len))) {
    iface.drop(frame, DropReason::tx_no_buffer);
    return;
  }
  HeaderFields fields;
  fields.src_port = seg.dst_port;
  fields.dst_port = seg.src_port;
  fields.seq = cookies_.make(tuple, seg.seq, seg.options.mss, now_us);
  fields.ack = seg.seq + 1;
  fields.flags = kFlagSyn | kFlagAck;
  fields.window = static_cast<uint16_t>(std::min<uint32_t>(config_.buffer_size, 0xffff));
  uint8_t* const ip_header = frame.data + ethernet::kHeaderLen;
  uint8_t* const segment = ip_header + ipv4::kMinHeaderLen;
  write_header(segment, fields, options);
  write_checksum(segment, header_len, ip.dst, ip.src);
  ipv4::write_header(ip_header, ip.dst, ip.src, ipv4::kProtocolTcp, header_len, 0);
  counters_.syn_cookies_sent.add();
  counters_.segments_out.add();
  iface.output_ipv4(frame, ip.src, now_us);
}

}  // namespace mtlsgw::net::tcp
