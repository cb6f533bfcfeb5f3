#!/bin/bash
# cow dedupe -r's first run and rerun against the floor of a rerun (the
# walk, then open+fstat+FIEMAP+close of every candidate and nothing else:
# benches/examples/dedupe_floor.rs), on btrfs and XFS, 3 rounds.
set -e
# Run from the repository root, as root, after `cargo build --release -p cow-cp`
# and `cargo build --release -p cow-benches --example dedupe_floor`:
#   cargo xtask with-mounts -- bash benches/scripts/dedupe-floor.sh
COW=${COW:-target/release/cow}
FLOOR=${FLOOR:-target/release/examples/dedupe_floor}
C=target/cow-bench-cache/dedupe-tree
ms() { echo $(( ($2 - $1) / 1000000 )); }
for fsname in XFS BTRFS; do
  var=COW_TEST_$fsname; M=${!var}
  for round in 1 2 3; do
    rm -rf $M/t; sync -f $M; cp -a --reflink=never $C $M/t; sync -f $M; sleep 1; sync -f $M
    t0=$(date +%s%N); "$COW" dedupe -r $M/t > /dev/null; t1=$(date +%s%N)
    "$COW" dedupe -r $M/t > /dev/null; t2=$(date +%s%N)
    echo "$fsname round $round: cow first $(ms $t0 $t1) ms, rerun $(ms $t1 $t2) ms"
    for th in 2 8; do echo "  floor: $("$FLOOR" $M/t $th)"; done
  done
  rm -rf $M/t
done
