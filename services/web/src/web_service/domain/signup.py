"""The sign-up form and its rules (the user service checks them again)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from web_service.domain.errors import InvalidSignUp

EMAIL = re.compile(r"^[^@\s\x00-\x1f]{1,64}@[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})+$")
NAME_MAX = 100
PASSWORD_MIN = 8
PASSWORD_MAX = 128


@dataclass(frozen=True, slots=True)
class SignUpForm:
    """What a shopper types to open an account; `checked()` applies the rules."""

    email: str
    name: str
    password: str

    def checked(self) -> SignUpForm:
        """The form, trimmed, or InvalidSignUp naming the first broken rule."""
        email, name = self.email.strip(), " ".join(self.name.split())
        if not EMAIL.match(email) or len(email) > 254:
            raise InvalidSignUp("email: an address like ada@example.com")
        if not name or len(name) > NAME_MAX or not name.isprintable():
            raise InvalidSignUp(f"name: 1 to {NAME_MAX} printable characters")
        if not PASSWORD_MIN <= len(self.password) <= PASSWORD_MAX:
            raise InvalidSignUp(f"password: {PASSWORD_MIN} to {PASSWORD_MAX} characters")
        return SignUpForm(email, name, self.password)
