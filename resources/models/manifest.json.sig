{
 "format": "cromotex-bundle-signature",
 "version": 1,
 "algorithm": "Ed25519",
 "key_id": "c862136d7256e190",
 "signature": "yRWIugACBtjk+vBCOOa+JhDRFQrLHBwybviNmwEACBSS6GkKKYTyDsAmNwA6mvyPumbl8ZDe71J2tp4BEuWHBQ=="
}
