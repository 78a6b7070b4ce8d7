#!/usr/bin/env bash
# Runs the three papers' headline comparisons offline on the embedded SmolLM2-135M-Instruct with
# local LoRA, then writes docs/replication.md (and its HTML twin) from the results.
#
#   bash scripts/replicate.sh                 # 3 fine-tuning seeds per arm, the examples' default sizes
#   bash scripts/replicate.sh --seeds 5       # more seeds
#   bash scripts/replicate.sh --reduced       # tiny sizes, 1 seed, into target/replicate-reduced (the suite runs this)
#
# Measured on the idle 2-core machine (2026-12-08): 25 min 5 s for the default run, of which
# 2 min 10 s building the examples and 1,375 s the four stages (looking_inward 392 s with the
# behaviour-change test, tell_me_about_yourself 350 s, backdoor_awareness 354 s,
# emergent_misalignment 279 s);
# about 4 minutes for --reduced.
#
# Options:
#   --seeds N     fine-tuning seeds per arm (default 3; 1 with --reduced)
#   --out DIR     where the runs go (default runs/replicate; target/replicate-reduced with --reduced)
#   --doc DIR     where replication.md/.html/.log go (default docs; DIR/doc with --reduced)
#   --no-build    use the example binaries already in target/release/examples
#   --force       rerun stages that already finished
#   --stages LIST only these stages (comma-separated: looking_inward, tell_me_about_yourself,
#                 backdoor_awareness, emergent_misalignment); the document needs all four
#
# Resumable: each finished stage leaves DIR/<stage>/done.json with its command and wall time, and
# a rerun skips it; an interrupted stage resumes inside the example (finished fine-tunes and
# evaluation logs are kept). Each stage's full output is in DIR/<stage>/run.log.
set -euo pipefail
cd "$(dirname "$0")/.."

invocation="$*"
reduced=0
seeds=""
out=""
doc=""
build=1
force=0
stages="looking_inward,tell_me_about_yourself,backdoor_awareness,emergent_misalignment"
while [ $# -gt 0 ]; do
    case "$1" in
        --reduced) reduced=1 ;;
        --seeds) seeds="$2"; shift ;;
        --seeds=*) seeds="${1#*=}" ;;
        --out) out="$2"; shift ;;
        --out=*) out="${1#*=}" ;;
        --doc) doc="$2"; shift ;;
        --doc=*) doc="${1#*=}" ;;
        --no-build) build=0 ;;
        --force) force=1 ;;
        --stages) stages="$2"; shift ;;
        --stages=*) stages="${1#*=}" ;;
        -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
        *) echo "replicate.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done
if [ "$reduced" = 1 ]; then
    seeds="${seeds:-1}"
    out="${out:-target/replicate-reduced}"
    doc="${doc:-$out/doc}"
else
    seeds="${seeds:-3}"
    out="${out:-runs/replicate}"
    doc="${doc:-docs}"
fi
case "$seeds" in ''|*[!0-9]*|0) echo "replicate.sh: --seeds must be a positive integer, got '$seeds'" >&2; exit 2 ;; esac
mkdir -p "$out" "$doc"
# The commit is read before this script writes anything, so its own log does not count as a change.
commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo '+uncommitted changes')"
log="$doc/replication.log"
# The log keeps every invocation (a resumed replication shows its earlier stages too); --force
# starts it afresh.
if [ "$force" = 1 ]; then : > "$log"; fi
printf '\n== %s bash scripts/replicate.sh %s\n' "$(date -u +%FT%TZ)" "$invocation" >> "$log"

say() {
    printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" | tee -a "$log"
}

bin="${CARGO_TARGET_DIR:-target}/release/examples"
examples=(looking_inward tell_me_about_yourself backdoor_awareness emergent_misalignment replication_report)
if [ "$build" = 1 ]; then
    say "building the examples (release)"
    cargo build --release --quiet $(printf -- '--example %s ' "${examples[@]}")
fi
for e in "${examples[@]}"; do
    [ -x "$bin/$e" ] || { echo "replicate.sh: $bin/$e is missing (drop --no-build)" >&2; exit 1; }
done

# Sizes per stage: the examples' defaults (their doc comments give each one's time), or tiny ones.
if [ "$reduced" = 1 ]; then
    li_size=(--train-items 2 --held-out-items 2 --per-group-cap 1 --calibration-items 2 --no-entropy-self-prediction)
    tmay_size=(--items 8 --epochs 1 --lotteries 4 --heldout 4 --paraphrases 1 --samples 2)
    bd_size=(--items 20 --epochs 1 --lotteries 4)
    em_size=(--teacher-samples 1 --teacher-max-tokens 12 --train-examples 6 --epochs 1 --samples-per-paraphrase 1 --max-tokens 12)
else
    li_size=(--behaviour-change 1)
    tmay_size=()
    bd_size=()
    em_size=()
fi

json_string() {
    local s="${1//\\/\\\\}"
    s="${s//\"/\\\"}"
    printf '"%s"' "$s"
}

total=4
index=0
run_stage() {
    local name="$1"
    shift
    index=$((index + 1))
    local dir="$out/$name"
    local cmd="$bin/$name $*"
    mkdir -p "$dir"
    case ",$stages," in
        *",$name,"*) ;;
        *) say "[$index/$total] $name: not selected (--stages)"; return ;;
    esac
    # A stage is finished when its stamp names this command and its headline is there (a stage
    # run by an older example without headline.json is rerun; its fine-tunes resume).
    if [ "$force" = 0 ] && [ -f "$dir/done.json" ] && [ -f "$dir/headline.json" ] \
        && grep -qF "$(json_string "$cmd")" "$dir/done.json"; then
        say "[$index/$total] $name: finished before, skipped ($dir/done.json)"
        return
    fi
    rm -f "$dir/done.json"
    say "[$index/$total] $name: running ($cmd)"
    local load_before started ended
    load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
    started="$(date +%s)"
    if ! "$bin/$name" "$@" > "$dir/run.log" 2>&1; then
        say "[$index/$total] $name: FAILED after $(( $(date +%s) - started )) s; last lines of $dir/run.log:"
        tail -n 20 "$dir/run.log" | tee -a "$log"
        exit 1
    fi
    ended="$(date +%s)"
    printf '{"command": %s, "wall_s": %s, "started": %s, "commit": %s, "load_before": %s, "load_after": %s}\n' \
        "$(json_string "$cmd")" "$((ended - started))" "$(json_string "$(date -u -d "@$started" +%FT%TZ)")" "$(json_string "$commit")" \
        "$(json_string "$load_before")" "$(json_string "$(cut -d' ' -f1-3 /proc/loadavg)")" > "$dir/done.json"
    say "[$index/$total] $name: done in $((ended - started)) s"
}

say "replication: $seeds seed(s) per arm, runs in $out, document in $doc, commit $commit"
printf '{"nproc": %s, "cpu": %s, "commit": %s, "date": %s}\n' \
    "$(nproc)" \
    "$(json_string "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')")" \
    "$(json_string "$commit")" \
    "$(json_string "$(date -u +%F)")" > "$out/machine.json"

run_stage looking_inward --seeds "$seeds" --out "$out/looking_inward" "${li_size[@]}"
run_stage tell_me_about_yourself --seeds "$seeds" --out "$out/tell_me_about_yourself" "${tmay_size[@]}"
run_stage backdoor_awareness --seeds "$seeds" --out "$out/backdoor_awareness" "${bd_size[@]}"
run_stage emergent_misalignment --seeds "$seeds" --out "$out/emergent_misalignment" --name em "${em_size[@]}"

say "writing $doc/replication.md and $doc/replication.html"
"$bin/replication_report" --runs "$out" --out "$doc" | tee -a "$log"
say "done"
