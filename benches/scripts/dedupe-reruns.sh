#!/bin/bash
# first run and 5 reruns of cow dedupe -r on btrfs and XFS: wall times
set -e
# Run from the repository root, as root: cargo xtask with-mounts -- bash benches/scripts/dedupe-reruns.sh
COW=${COW:-target/release/cow}
C=target/cow-bench-cache/dedupe-tree
for fsname in BTRFS XFS; do
  var=COW_TEST_$fsname; M=${!var}
  for round in 1 2; do
  rm -rf $M/t; cp -a --reflink=never $C $M/t; sync -f $M
  t0=$(date +%s%N); "$COW" dedupe -r $M/t >/dev/null; t1=$(date +%s%N)
  first=$(( (t1-t0)/1000000 ))
  re=""
  for i in 1 2 3 4 5; do t0=$(date +%s%N); "$COW" dedupe -r $M/t >/dev/null; t1=$(date +%s%N); re="$re $(( (t1-t0)/1000000 ))"; done
  echo "$fsname round $round first $first ms reruns$re"
  done
  rm -rf $M/t
done
