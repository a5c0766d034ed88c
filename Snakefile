# synthshare: collaborative learning from distributed data with DP synthetic data
# (Prediger et al. 2024). Stages: data -> generate -> analyse -> figures; audit (only with
# an `audit` section in the config).
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/generate.smk"
include: "workflow/rules/analyse.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/audit.smk"


rule all:
    input:
        rules.data.input,
        rules.generate.input,
        rules.analysis.input,
        every_run(lambda run: figure_targets(config, run)),
        sweep_targets(),
        every_run(audit_outputs),
    default_target: True
