{
 "format": "cromotex-bundle-signature",
 "version": 1,
 "algorithm": "Ed25519",
 "key_id": "c862136d7256e190",
 "signature": "2KzGKr0+UF18kbQsO2y1QZHS7sa/LzQYZDUsw31Z+C7SE3t8wZTHIzFuFeMRMpHpDoAx6GgWWsSavJ0RM48IDA=="
}
