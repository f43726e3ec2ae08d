#!/bin/bash
# The 100 000-step table (docs/results/table-100k.md), one queue per CPU core:
#
#   nohup benchmarks/table_100k_queue.sh 0 > ~/diffrl-work/queue0.log 2>&1 &
#   nohup benchmarks/table_100k_queue.sh 1 > ~/diffrl-work/queue1.log 2>&1 &
#
# Each queue runs subsets of the table's full `diffrl bench` command one after another, pinned to
# its core with single-threaded XLA (two pinned one-core jobs do 8 % more work than one two-core
# job: table-100k.md, "Cost"). bench skips finished runs and resumes interrupted ones, so after
# a stop the same two lines continue where the queues were. An optional second argument is a
# PID to wait for first (a bench already running on that core). Environment: TABLE_OUT (default
# ~/diffrl-work/table-100k), MINARI_DATASETS_PATH (default ~/diffrl-work/d4rl-grade).
set -u
core=$1
wait_pid=${2:-}
while [ -n "$wait_pid" ] && kill -0 "$wait_pid" 2>/dev/null; do sleep 30; done
export MINARI_DATASETS_PATH=${MINARI_DATASETS_PATH:-$HOME/diffrl-work/d4rl-grade}
export XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
out=${TABLE_OUT:-$HOME/diffrl-work/table-100k}
common=(--seeds 0,1,2 --steps 100000 --eval-every 10000 --eval-episodes 10 --cpus-per-job 2)
dtql=(--set dtql.pretrain_steps=5000)  # 5 % of the budget, as its presets' 50k of 1M

sweep() {  # sweep LABEL BENCH_FLAGS...: one subset of the table's command, pinned to this core
  local label=$1
  shift
  echo "$(date -u +%FT%T) start: $label"
  taskset -c "$core" nice -n 10 diffrl bench "$@" "${common[@]}" --out "$out"
  local rc=$?
  echo "$(date -u +%FT%T) end rc=$rc"
}

cell() {  # cell ALGOS ENV LEVEL [extra bench flags]: one dataset of one env, with its preset
  local algos=$1 env=$2 level=$3
  shift 3
  sweep "$algos $env $level" --algos "$algos" --datasets "minari:diffrl/$env/$level-v0" \
    --preset "${env%-v5}-$level-v2" "$@"
}

baselines() {  # the three baselines on one env's two datasets
  local env=$1 prefix=${1%-v5}
  sweep "baselines $env" --algos bc,td3bc,iql \
    --datasets "minari:diffrl/$env/medium-replay-v0,minari:diffrl/$env/medium-expert-v0" \
    --preset "$prefix-medium-replay-v2,$prefix-medium-expert-v2"
}

if [ "$core" = 1 ]; then
  cell dql hopper-v5 medium-expert
  cell diffcps hopper-v5 medium-expert
  cell dql walker2d-v5 medium-replay
  cell dtql walker2d-v5 medium-replay "${dtql[@]}"
  cell dql walker2d-v5 medium-expert
  cell dtql walker2d-v5 medium-expert "${dtql[@]}"
  cell dql halfcheetah-v5 medium-replay
  cell dtql halfcheetah-v5 medium-replay "${dtql[@]}"
  cell dql halfcheetah-v5 medium-expert
  cell dtql halfcheetah-v5 medium-expert "${dtql[@]}"
else
  baselines hopper-v5
  cell dtql hopper-v5 medium-replay "${dtql[@]}"
  cell diffcps hopper-v5 medium-replay
  cell dtql hopper-v5 medium-expert "${dtql[@]}"
  baselines walker2d-v5
  cell diffcps walker2d-v5 medium-replay
  cell diffcps walker2d-v5 medium-expert
  baselines halfcheetah-v5
  cell diffcps halfcheetah-v5 medium-replay
  cell diffcps halfcheetah-v5 medium-expert
fi
