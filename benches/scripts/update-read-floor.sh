#!/bin/bash
# The read floor of a content-mode update: after the bench's reset of the
# destination (cp -a --reflink=auto from an independent older copy), how long
# does it take just to read the destination tree (what any comparison must read)?
set -e
# Run from the repository root, as root: cargo xtask with-mounts -- bash benches/scripts/update-read-floor.sh
COW=${COW:-target/release/cow}
for fsname in BTRFS XFS; do
  var=COW_TEST_$fsname; M=${!var}
  B=$M/floor; rm -rf $B; mkdir -p $B/src
  python3 benches/scripts/make-tree.py $B/src 10000 1
  cp -a --reflink=never $B/src $B/old; sync
  for round in 1 2 3; do
    for what in cp read1 read2; do
      rm -rf $B/dst; cp -a --reflink=auto $B/old $B/dst; sync -f $M
      cat $B/src/*/* > /dev/null
      t0=$(date +%s.%N)
      case $what in
        cp) cp -rT --reflink=auto $B/src $B/dst ;;
        read1) cat $B/dst/*/* > /dev/null ;;
        read2) (cat $B/dst/d0[0-4]*/* > /dev/null & cat $B/dst/d0[5-9]*/* > /dev/null & wait) ;;
      esac
      t1=$(date +%s.%N)
      echo "$fsname round $round $what $(echo "($t1-$t0)*1000" | bc) ms"
    done
  done
  rm -rf $B
done
