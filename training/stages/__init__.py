"""The four training stages (pretrain_cxr, pretrain_ecg, align, finetune), each with
`run(config, ...) -> {name: path}` for Python callers (training.build) and `main(argv)`
for `cromotex-train`; shared machinery in `common`."""
