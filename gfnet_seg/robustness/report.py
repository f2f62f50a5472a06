"""Results of the robustness tools as a Markdown table and a JSON summary, written atomically (their
CSV files: ``fileio.atomic_write_csv``)."""
import json
from typing import Sequence

from ..fileio import atomic_write_bytes


def format_table(rows: Sequence[dict], columns: Sequence[str]) -> str:
    """A Markdown table of ``columns`` (floats with 2 decimals)."""
    def cell(value):
        return f'{value:.2f}' if isinstance(value, float) else str(value)
    lines = ['| ' + ' | '.join(columns) + ' |', '|' + '---|' * len(columns)]
    lines += ['| ' + ' | '.join(cell(row.get(column, '')) for column in columns) + ' |' for row in rows]
    return '\n'.join(lines)


def write_json(path: str, data: dict) -> None:
    atomic_write_bytes(path, (json.dumps(data, indent=2) + '\n').encode())


def severity_means(rows: Sequence[dict], metric: str, names: Sequence[str]) -> list:
    """One row per name in ``names``: ``metric`` at each severity and their mean, in the
    wide layout of the papers' tables (``s1`` ... ``s5``, ``mean``)."""
    table = []
    for name in names:
        values = {row['severity']: row[metric] for row in rows if row['test'] == name}
        if values:
            table.append({'corruption': name, **{f's{s}': v for s, v in sorted(values.items())},
                          'mean': sum(values.values()) / len(values)})
    return table
