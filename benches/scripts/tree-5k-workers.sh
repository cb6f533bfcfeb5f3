#!/bin/bash
# The first measurement: 5,000 files of 1-64 KiB, cow cp -r (default
# workers, -j1) against cp -r --reflink=auto; 7 interleaved rounds, median.
set -e
# Run from the repository root, as root: cargo xtask with-mounts -- bash benches/scripts/tree-5k-workers.sh
COW=${COW:-target/release/cow}
for fsname in BTRFS XFS EXT4 TMPFS; do
  var=COW_TEST_$fsname; M=${!var}
  B=$M/t5k; rm -rf $B; mkdir -p $B/src
  python3 benches/scripts/make-tree.py $B/src 5000 5
  sync
  declare -A T; T=()
  for round in 1 2 3 4 5 6 7; do
    for tool in cow cow-j1 cp; do
      rm -rf $B/dst; sync -f $M
      case $tool in
        cow) cmd="$COW cp -r $B/src $B/dst" ;;
        cow-j1) cmd="$COW cp -r -j1 $B/src $B/dst" ;;
        cp) cmd="cp -r --reflink=auto $B/src $B/dst" ;;
      esac
      t0=$(date +%s%N); $cmd; t1=$(date +%s%N)
      T[$tool]="${T[$tool]} $(( (t1-t0)/1000000 ))"
    done
  done
  for tool in cow cow-j1 cp; do
    echo "$fsname $tool median $(echo ${T[$tool]} | tr ' ' '\n' | sort -n | sed -n 4p) ms (all:${T[$tool]})"
  done
  rm -rf $B
done
