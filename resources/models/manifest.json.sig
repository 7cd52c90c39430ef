{
 "format": "cromotex-bundle-signature",
 "version": 1,
 "algorithm": "Ed25519",
 "key_id": "c862136d7256e190",
 "signature": "Glxigu8I5v9cj7HVuld2Scza4NaNYNti9aw0nP958PwJBocQxyZSxvje4Tg28Y6BU/JxEHA0BLkhdR9niiTcCA=="
}
