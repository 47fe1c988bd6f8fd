"""Who staff are: the console sign-in (directory password, then TOTP or a recovery code), reauth, sign-out."""
