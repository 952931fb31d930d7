#!/usr/bin/env python3
"""Runs Google Benchmark binaries side by side and compares their counters.

    compare_runs.py [--rounds 5] [--filter REGEX] [--cpu 1] LABEL=BINARY ...

On a shared machine figures taken minutes apart differ by up to a factor of
two (docs/benchmarks.md), so two builds are only compared within one run:
each round runs every binary once, in turn, pinned to the same CPU, with
--benchmark_repetitions (default 3); a round's value for a counter is the
median of its repetitions, and the table gives, per binary, the median over
the rounds, the range of the rounds, and the ratios to the first binary of
the medians and of the minimums. The minimum matters here: these vCPUs run
at two speeds about 1.5x apart (a busy sibling thread or host, presumably),
so a round's figures are either "fast" or "slow", and the minimum over
enough rounds is the undisturbed figure of each binary.
Counters compared: real_time, cpu_time and every user counter whose name
starts with "cycles" or "core_". Exits non-zero if any run fails (tcp_bench and
net_bench exit non-zero when a segment went another way than intended).
"""

import argparse
import collections
import json
import statistics
import subprocess
import sys


def run_once(binary, pattern, cpu, repetitions):
    command = ['taskset', '-c', str(cpu), binary, '--benchmark_filter=' + pattern,
               '--benchmark_repetitions=%d' % repetitions,
               '--benchmark_report_aggregates_only=true', '--benchmark_format=json']
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit('%s failed (exit %d):\n%s' % (binary, done.returncode, done.stderr))
    values = {}
    for row in json.loads(done.stdout)['benchmarks']:
        # With one repetition Google Benchmark reports no aggregates.
        wanted = 'iteration' if repetitions == 1 else 'aggregate'
        if row.get('run_type') != wanted or (wanted == 'aggregate' and row.get('aggregate_name') != 'median'):
            continue
        for key, value in row.items():
            if key in ('real_time', 'cpu_time') or key.startswith(('cycles', 'core_')):
                values[(row['run_name'], key)] = value
    return values


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--rounds', type=int, default=5)
    parser.add_argument('--filter', default='.', help='--benchmark_filter for every binary')
    parser.add_argument('--cpu', type=int, default=1, help='CPU to pin every run to')
    parser.add_argument('--repetitions', type=int, default=3)
    parser.add_argument('binaries', nargs='+', metavar='LABEL=BINARY')
    args = parser.parse_args()
    labelled = [b.split('=', 1) if '=' in b else (b, b) for b in args.binaries]

    rounds = {label: collections.defaultdict(list) for label, _ in labelled}
    for _ in range(args.rounds):
        for label, binary in labelled:
            for key, value in run_once(binary, args.filter, args.cpu, args.repetitions).items():
                rounds[label][key].append(value)

    keys = sorted({key for label, _ in labelled for key in rounds[label]})
    first = labelled[0][0]
    header = '%-56s' % 'benchmark  counter'
    for label, _ in labelled:
        header += ' | %-24s' % (label + ': median [range]')
        if label != first:
            header += ' %13s' % 'ratio med/min'
    print(header)
    for key in keys:
        line = '%-56s' % ('%s  %s' % key)
        base = rounds[first][key]
        for label, _ in labelled:
            values = rounds[label][key]
            if not values:
                line += ' | %-24s' % '-'
                continue
            median = statistics.median(values)
            line += ' | %-24s' % ('%.1f [%.1f-%.1f]' % (median, min(values), max(values)))
            if label != first:
                line += ' %13s' % ('%.2f / %.2f' % (median / statistics.median(base), min(values) / min(base))
                                   if base and min(base) > 0 else '-')
        print(line)


if __name__ == '__main__':
    main()
