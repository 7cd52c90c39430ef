{
 "format": "cromotex-bundle-signature",
 "version": 1,
 "algorithm": "Ed25519",
 "key_id": "c862136d7256e190",
 "signature": "zWagHzqXlGYY2kXKdW7mazl0QLfA6FH8IxoMUPB5k4er0hQpRu1T9wPaKve98//8C7mpghexinjd8c1L2LFhAw=="
}
