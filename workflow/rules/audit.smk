# Audit stage (issue 13, docs/audit.md): membership inference against each audited
# party's most vulnerable records with shadow generators fitted by the release's own
# code (synthshare.audit.shadow), an empirical ε lower bound, anonymeter's risks, two
# figures and the audit's claims rows. Runs only when the config has an `audit` section.
# One job per (audited party, fraction, arm): every shadow fit of an arm in one program.

AUDIT_CATEGORY = "7. Privacy audit"


if AUDIT is not None:

    rule audit_shadows:
        input:
            local=PATHS.local("centres", "{fraction}", "{party}"),
            test=PATHS.test,
        output:
            scores=PATHS.audit_job_file("scores.parquet", "{party}", "{fraction}", "{arm}"),
            anonymeter=PATHS.audit_job_file("anonymeter.csv", "{party}", "{fraction}", "{arm}"),
            accounting=PATHS.audit_job_file("accounting.json", "{party}", "{fraction}", "{arm}"),
        params:
            party=lambda w: w.party,
            scenario="centres",
            fraction=lambda w: float(w.fraction),
            arm=lambda w: w.arm,
            settings=config["generator"],
            audit=config["audit"],
            centres=parties_of("centres"),
            fractions=centre_fractions(config),
        log:
            PATHS.log("{party}_f{fraction}_{arm}", "audit"),
        benchmark:
            PATHS.benchmark("{party}_f{fraction}_{arm}", "audit")
        wildcard_constraints:
            arm=r"control|eps[0-9.e+-]+",
        # One thread: the training loop is compiled sequential (synthshare.generator.compilation).
        threads: 1
        resources:
            mem_mb=attempt_scaled(4000),
            runtime=attempt_scaled(120),
        conda:
            "../envs/synthshare.yaml"
        script:
            "../../scripts/audit_shadows.py"

    rule audit_tables:
        input:
            scores=audit_job_files("scores.parquet"),
            anonymeter=audit_job_files("anonymeter.csv"),
            accounting=audit_job_files("accounting.json"),
        output:
            summary=report(PATHS.audit_table("summary.csv"), caption="../report/audit_tables.rst", category=report_category(AUDIT_CATEGORY)),
            per_target=PATHS.audit_table("per_target.csv"),
            outliers=report(PATHS.audit_table("outliers.csv"), caption="../report/audit_tables.rst", category=report_category(AUDIT_CATEGORY)),
            roc=PATHS.audit_table("roc.parquet"),
            anonymeter=report(
                PATHS.audit_table("anonymeter.csv"), caption="../report/audit_anonymeter.rst", category=report_category(AUDIT_CATEGORY)
            ),
            claims=report(PATHS.audit_table("claims.csv"), caption="../report/claims.rst", category=report_category(AUDIT_CATEGORY)),
        params:
            level=AUDIT.level,
            seed=AUDIT.seed,
        log:
            PATHS.log("audit_tables", "audit"),
        threads: 1
        resources:
            mem_mb=attempt_scaled(2000),
            runtime=attempt_scaled(20),
        conda:
            "../envs/synthshare.yaml"
        script:
            "../../scripts/audit_tables.py"

    rule audit_figures:
        input:
            summary=rules.audit_tables.output.summary,
            per_target=rules.audit_tables.output.per_target,
            outliers=rules.audit_tables.output.outliers,
            roc=rules.audit_tables.output.roc,
        output:
            roc_png=report(PATHS.figure("audit_roc", "png"), caption="../report/audit_roc.rst", category=report_category(AUDIT_CATEGORY)),
            roc_pdf=PATHS.figure("audit_roc", "pdf"),
            per_target_png=report(
                PATHS.figure("audit_per_target", "png"), caption="../report/audit_per_target.rst", category=report_category(AUDIT_CATEGORY)
            ),
            per_target_pdf=PATHS.figure("audit_per_target", "pdf"),
        log:
            PATHS.log("audit_figures", "audit"),
        threads: 1
        resources:
            mem_mb=attempt_scaled(2000),
            runtime=attempt_scaled(20),
        conda:
            "../envs/synthshare.yaml"
        script:
            "../../scripts/audit_figures.py"

    rule audit:
        """Target: the whole audit stage (snakemake audit; make audit)."""
        input:
            every_run(audit_outputs),
