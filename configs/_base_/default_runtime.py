# Logging, visualisation and environment as in mmseg; checkpoint and logger hooks come with the schedule.
_base_ = ['mmseg::_base_/default_runtime.py']
