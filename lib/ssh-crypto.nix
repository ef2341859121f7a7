# Algorithm sets for paranoid.ssh.crypto. `null` keeps NixOS's own choice.
{
  # Post-quantum hybrid first, then X25519; AEAD ciphers only; encrypt-then-MAC only; Ed25519
  # host keys. Clients need OpenSSH >= 8.x (mlkem768x25519 with >= 9.9, X25519 otherwise).
  modern = {
    KexAlgorithms = [ "mlkem768x25519-sha256" "curve25519-sha256" "curve25519-sha256@libssh.org" ];
    Ciphers = [ "chacha20-poly1305@openssh.com" "aes256-gcm@openssh.com" "aes128-gcm@openssh.com" ];
    Macs = [ "hmac-sha2-512-etm@openssh.com" "hmac-sha2-256-etm@openssh.com" ];
    HostKeyAlgorithms = [ "ssh-ed25519" "ssh-ed25519-cert-v01@openssh.com" ];
    PubkeyAcceptedAlgorithms = [ "ssh-ed25519" "ssh-ed25519-cert-v01@openssh.com" "sk-ssh-ed25519@openssh.com" "sk-ssh-ed25519-cert-v01@openssh.com" "rsa-sha2-512" "rsa-sha2-256" ];
    hostKeyTypes = [ "ed25519" ];
  };
  # Only FIPS 140-3 approved primitives (SP 800-56A/B finite-field DH, AES, SHA-2, RSA and
  # EdDSA per FIPS 186-5); no NIST-curve ECDH, which ssh-audit flags.
  fips = {
    KexAlgorithms = [ "diffie-hellman-group16-sha512" "diffie-hellman-group18-sha512" ];
    Ciphers = [ "aes256-gcm@openssh.com" "aes128-gcm@openssh.com" "aes256-ctr" "aes192-ctr" "aes128-ctr" ];
    Macs = [ "hmac-sha2-512-etm@openssh.com" "hmac-sha2-256-etm@openssh.com" ];
    HostKeyAlgorithms = [ "rsa-sha2-512" "rsa-sha2-256" "ssh-ed25519" ];
    PubkeyAcceptedAlgorithms = [ "rsa-sha2-512" "rsa-sha2-256" "ssh-ed25519" "sk-ssh-ed25519@openssh.com" ];
    hostKeyTypes = [ "ed25519" "rsa" ];
  };
  # NixOS's defaults, untouched.
  upstream = {
    KexAlgorithms = null;
    Ciphers = null;
    Macs = null;
    HostKeyAlgorithms = null;
    PubkeyAcceptedAlgorithms = null;
    hostKeyTypes = [ "rsa" "ed25519" ];
  };
}
