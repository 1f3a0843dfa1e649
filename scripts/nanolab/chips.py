"""What a chip is called in every figure, table and report entry: one function, so a run without a
chip number is never mistaken for a pooled average of the day."""

from __future__ import annotations

NO_CHIP_NUMBER = "no chip number"
POOLED = "all chips, pooled"  # analysis.group_by: day


def chip_label(chip_group: str | None, chip_number: int | None, pooled: bool = False) -> str:
    """ "Alisson67"; "chip 67" without a chip group; "Alisson, no chip number"; "no chip number"; or,
    for a group of every run of the day (`pooled`), "all chips, pooled"."""
    if pooled:
        return POOLED
    if chip_number is None:
        return f"{chip_group}, {NO_CHIP_NUMBER}" if chip_group else NO_CHIP_NUMBER
    return f"{chip_group}{chip_number}" if chip_group else f"chip {chip_number}"
