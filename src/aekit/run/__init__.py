"""Everything the ``aekit`` command line does with run folders, as Python functions: training into
a run folder (:mod:`aekit.run.fitting`: ``fit_run``, ``resume_run``, ``demo``), the commands
over a finished run's model (:mod:`aekit.run.commands`) and the comparison of model families on
one dataset (:mod:`aekit.run.leaderboard`: ``compare``). Reading and writing the folder itself is
:mod:`aekit.runfolder`."""

from ..runfolder import RunData, load_run_data, read_run
from .commands import (
    Compressed,
    Denoised,
    Detection,
    Imputed,
    Neighbours,
    compare_pca_run,
    compress_run,
    decompress_run,
    denoise_run,
    detect_run,
    encode_run,
    evaluate_run,
    export_run,
    generate_run,
    impute_run,
    interpolate_run,
    run_codec,
    search_run,
)
from .fitting import DEMO_PARAMS, Run, demo, fit_run, resume_run
from .leaderboard import Leaderboard, compare

__all__ = [
    "DEMO_PARAMS", "Compressed", "Denoised", "Detection", "Imputed", "Leaderboard", "Neighbours", "Run", "RunData",
    "compare", "compare_pca_run", "compress_run", "decompress_run", "demo", "denoise_run", "detect_run", "encode_run",
    "evaluate_run", "export_run", "fit_run", "generate_run", "impute_run", "interpolate_run", "load_run_data", "read_run",
    "resume_run", "run_codec", "search_run",
]
