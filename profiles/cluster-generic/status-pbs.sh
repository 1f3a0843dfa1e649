#!/bin/sh
# Snakemake cluster-generic status command for PBS Pro / OpenPBS (`qstat -fx`: needs job history) and
# Torque (`-x` is XML there; keep_completed >= 300 s): prints running, success or failed for job id $1.
info=$(qstat -fx "$1" 2>&1) || {
    case "$info" in
        *"Unknown Job"*) echo failed ;;  # the server no longer knows the job
        *) echo running ;;               # the server did not answer: ask again next time
    esac
    exit 0
}
state=$(printf '%s\n' "$info" | sed -n -e 's/^ *job_state = *//p' -e 's/.*<job_state>\([^<]*\)<.*/\1/p')
code=$(printf '%s\n' "$info" | sed -n -e 's/^ *[Ee]xit_status = *//p' -e 's/.*<exit_status>\([^<]*\)<.*/\1/p')
case "$state" in
    F | C) if [ "$code" = 0 ]; then echo success; else echo failed; fi ;;
    *) echo running ;;
esac
