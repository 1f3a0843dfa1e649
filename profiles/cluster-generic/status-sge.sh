#!/bin/sh
# Snakemake cluster-generic status command for SGE / Univa / Open Grid Scheduler: prints running,
# success or failed for the job id given as $1 (finished jobs are looked up with qacct).
if qstat -j "$1" >/dev/null 2>&1; then echo running; exit 0; fi
info=$(qacct -j "$1" 2>/dev/null) || { echo running; exit 0; }  # not in the accounting file yet
failed=$(printf '%s\n' "$info" | awk '$1 == "failed" { print $2 }' | tail -n 1)
code=$(printf '%s\n' "$info" | awk '$1 == "exit_status" { print $2 }' | tail -n 1)
if [ "$failed" = 0 ] && [ "$code" = 0 ]; then echo success; else echo failed; fi
