{
 "format": "cromotex-bundle-signature",
 "version": 1,
 "algorithm": "Ed25519",
 "key_id": "c862136d7256e190",
 "signature": "StExz+bYAyBMMWnMD2mouOW/pDRewOhULr4B30KE/E5GRh5oCGn68Eiqv6ui5pzBtD8f5BJhoc7IBBBya+ChAw=="
}
