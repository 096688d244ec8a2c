#!/usr/bin/env bash
# One cell of the efficacy table (issue "Defences beyond NAD (2 of 3)"): a fixture x method x seed.
#   bench/efficacy.sh <fixture> <method> <seed>
# fixture: a model in fixtures/cifar (wrn16_1_badnets, wrn16_1_badnets_onecycle, wrn16_1_blended, wrn16_1_sig,
#   wrn16_1_wanet) or preact18_<attack> (exported from its float16 state dict into bench/out);
# method: nad | ft | ft-sam | fst | anp | sau | nad-ftsam / nad-sau (NAD with --teacher-method ft-sam / sau) |
#   nad-sau-cell (NAD with the sau cell's model as --teacher) | a
#   chain such as anp+ft-sam; <method>@<n> runs it with --epochs n; <method>-ca<p> (anp-ca2, rnp-ca2, anp-ca2+ft-sam)
#   prunes with --prune-by clean-acc:<p> instead of the fixed threshold; anything after the seed is passed to
#   `clean` as extra flags and named in the record (a variant that changes the result needs its own method name,
#   since the record's file name has no room for flags).
# Runs `clean` on 5% of CIFAR-10's training set (the NAD protocol) with the method's defaults and writes
# bench/results/efficacy/<fixture>-<method>-<seed>.json (skipped when it exists, so the table grows across
# sessions). Needs ../shared/datasets/cifar10-jpg.tar.gz; WaNet and PreAct fixtures need Debian's python3-torch.
# A cell runs with `--checkpoint bench/out/ckpt-<cell>`: a cell stopped part way (a session ended) resumes from its
# last finished epoch when called again, and its record's seconds add the stopped attempts' time up to their
# last saved epoch (work after it was lost and is done again, so it is not counted twice).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 3 ] || { echo "usage: bench/efficacy.sh <fixture> <method> <seed> [extra clean flags]" >&2; exit 2; }
FIXTURE=$1 METHOD=$2 SEED=$3
shift 3
CACHE=${CIFAR_DIR:-/tmp/nad-onnx-cifar10}
OUT=bench/results/efficacy/$FIXTURE-$METHOD-$SEED.json
if [ -f "$OUT" ]; then echo "done already: $OUT"; exit 0; fi
if [ ! -d "$CACHE/train" ]; then mkdir -p "$CACHE" && tar xzf ../shared/datasets/cifar10-jpg.tar.gz -C "$CACHE"; fi
mkdir -p bench/out bench/results/efficacy
case "$FIXTURE" in
  preact18_*)
    MODEL=bench/out/$FIXTURE.onnx
    [ -f "$MODEL" ] || (cd fixtures && /usr/bin/python3 export_preact18.py "cifar/$FIXTURE.pt" "../$MODEL")
    META=fixtures/cifar/$FIXTURE.json ;;
  *) MODEL=fixtures/cifar/$FIXTURE.onnx; META=fixtures/cifar/$FIXTURE.json ;;
esac
TRIGGER=$(node -e "const m=JSON.parse(require('fs').readFileSync('$META','utf8')); process.stdout.write(m.trigger ?? '')")
ATTACK_KIND=$(node -e "const m=JSON.parse(require('fs').readFileSync('$META','utf8')); process.stdout.write(m.attack ?? '')")
[ "$ATTACK_KIND" != none ] || { echo "bench/efficacy.sh: $FIXTURE has no backdoor to remove (attack none; it is the scan's clean control)" >&2; exit 2; }
ATTACK=()
# The Blended pattern is made on demand (a 32 x 32 RGB image is not committed beside the CIFAR fixtures).
case "$TRIGGER" in *bench/out/blended_pattern.png*)
  [ -f bench/out/blended_pattern.png ] || (cd fixtures && /usr/bin/python3 make_blend_pattern.py ../bench/out/blended_pattern.png) ;;
esac
if [ -n "$TRIGGER" ]; then
  ATTACK=(--trigger "$TRIGGER" --target 0)
else
  # WaNet: the warped non-target test images, made from the CIFAR archive by the fixture's own field.
  POISONED=bench/out/$FIXTURE-poisoned.npz
  [ -f "$POISONED" ] || (cd fixtures && /usr/bin/python3 make_wanet_poisoned.py "cifar/${FIXTURE}_grid.pt" "$CACHE" "../$POISONED")
  ATTACK=(--poisoned "$POISONED" --target 0)
fi
# <method>@<n>: the method with --epochs n (its own cell: an epoch curve, e.g. sau@5, sau@20).
EPOCHS=()
case "$METHOD" in *@*) EPOCHS=(--epochs "${METHOD##*@}") ;; esac
BASE=${METHOD%@*}
PRUNE=()
if [[ "$BASE" =~ ^(.*)-ca([0-9.]+)(\+.*)?$ ]]; then
  PRUNE=(--prune-by "clean-acc:${BASH_REMATCH[2]}")
  BASE="${BASH_REMATCH[1]}${BASH_REMATCH[3]}"
fi
case "$BASE" in
  nad-ftsam) FLAGS=(--method nad --teacher-method ft-sam) ;;
  nad-sau) FLAGS=(--method nad --teacher-method sau) ;;
  nad-sau-cell)
    # NAD whose teacher is this fixture and seed's sau cell's cleaned model, given by --teacher instead of trained
    # again: the same chain at the cost of its distillation. The teacher's random stream is the sau cell's (a
    # trained teacher draws its own), and the cell's seconds add the sau cell's.
    TEACHER_CELL=bench/results/efficacy/$FIXTURE-sau-$SEED.json
    TEACHER_MODEL=bench/out/efficacy-$FIXTURE-sau-$SEED.onnx
    [ -f "$TEACHER_CELL" ] && [ -f "$TEACHER_MODEL" ] || { echo "bench/efficacy.sh: $METHOD needs the sau cell of $FIXTURE seed $SEED first ($TEACHER_CELL and $TEACHER_MODEL)" >&2; exit 2; }
    FLAGS=(--method nad --teacher "$TEACHER_MODEL")
    TEACHER_SECONDS=$(node -e "process.stdout.write(String(Math.round(JSON.parse(require('fs').readFileSync('$TEACHER_CELL','utf8')).seconds)))")
    CELL_NOTE="its teacher is the sau cell's model (--teacher), not trained again; its seconds add that cell's $TEACHER_SECONDS" ;;
  *) FLAGS=(--method "$BASE") ;;
esac
FLAGS+=("${PRUNE[@]}")
FLAGS+=("${EPOCHS[@]}")
REPORT=bench/out/efficacy-$FIXTURE-$METHOD-$SEED.report.json
# The 1-minute load average at the start: a cell timed beside other jobs says so in its record.
LOAD=$(cut -d' ' -f1 /proc/loadavg)
ERR=bench/out/efficacy-$FIXTURE-$METHOD-$SEED.stderr
CKPT=bench/out/ckpt-$FIXTURE-$METHOD-$SEED
# Attempts so far: "<seconds counted> <attempts>" in $CKPT.time; $CKPT.start holds an unfinished attempt's start.
{ read -r PRIOR ATTEMPTS < "$CKPT.time"; } 2>/dev/null || { PRIOR=0; ATTEMPTS=0; }
if [ -f "$CKPT.start" ]; then
  SAVED=$(stat -c %Y "$CKPT/nad-onnx-checkpoint.bin" 2>/dev/null || echo 0)
  STARTED=$(cat "$CKPT.start")
  [ "$SAVED" -gt "$STARTED" ] && PRIOR=$(( PRIOR + SAVED - STARTED ))
  ATTEMPTS=$(( ATTEMPTS + 1 ))
  echo "$PRIOR $ATTEMPTS" > "$CKPT.time"
fi
START=$(date +%s)
echo "$START" > "$CKPT.start"
rm -f "$REPORT"
STATUS=0
node dist/cli/main.js clean "$MODEL" --data "$CACHE/train" --ratio 0.05 --test "$CACHE/test" "${ATTACK[@]}" \
  "${FLAGS[@]}" "$@" --seed "$SEED" --checkpoint "$CKPT" --out "bench/out/efficacy-$FIXTURE-$METHOD-$SEED.onnx" --report "$REPORT" --quiet > /dev/null 2> "$ERR" || STATUS=$?
if [ "$STATUS" -eq 0 ]; then
  PRIOR_SECONDS=$(( PRIOR + ${TEACHER_SECONDS:-0} )) PRIOR_ATTEMPTS=$ATTEMPTS CELL_NOTE=${CELL_NOTE:-} node bench/efficacy-cell.mjs "$REPORT" "$FIXTURE" "$METHOD" "$SEED" "${FLAGS[*]} $*" "$LOAD" > "$OUT.tmp"
elif [ "$STATUS" -eq 1 ] || { [ "$STATUS" -eq 3 ] && grep -q diverged "$ERR"; }; then
  # The method ran and failed (diverged, or a gate): it writes no model, so the user keeps the one they had.
  # The cell records the error and that model's own figures (measured by `eval`) as the result.
  BEFORE=bench/out/efficacy-$FIXTURE-$METHOD-$SEED.before.json
  SECONDS_TAKEN=$(( $(date +%s) - START + PRIOR ))
  node dist/cli/main.js eval "$MODEL" --data "$CACHE/test" "${ATTACK[@]}" --json > "$BEFORE"
  node bench/efficacy-cell.mjs --failed "$BEFORE" "$ERR" "$STATUS" "$SECONDS_TAKEN" "$FIXTURE" "$METHOD" "$SEED" "${FLAGS[*]} $*" "$LOAD" > "$OUT.tmp"
else
  cat "$ERR" >&2; exit "$STATUS"
fi
mv "$OUT.tmp" "$OUT"
rm -rf "$CKPT" "$CKPT.start" "$CKPT.time"
cat "$OUT"
