"""Paper grids as data: Table 1 run specs, resume, shard, merge, report."""

from nsr_tf.sweep.presets import OPTIMIZERS
from nsr_tf.sweep.presets import PRESETS
from nsr_tf.sweep.presets import Preset
from nsr_tf.sweep.presets import get_preset
from nsr_tf.sweep.rows import Row
from nsr_tf.sweep.rows import attack_setting
from nsr_tf.sweep.rows import table1_rows
from nsr_tf.sweep.table1 import check_resume
from nsr_tf.sweep.table1 import plan
from nsr_tf.sweep.table1 import run_table1
from nsr_tf.sweep.table1 import shard
from nsr_tf.sweep.table1 import write_table

__all__ = [
    "OPTIMIZERS",
    "PRESETS",
    "Preset",
    "Row",
    "attack_setting",
    "check_resume",
    "get_preset",
    "plan",
    "table1_rows",
    "run_table1",
    "shard",
    "write_table",
]
