"""Sign-up: a shopper opens an account (no roles; the admin role is never granted here)."""

from __future__ import annotations

from web_service.domain.signup import SignUpForm
from web_service.service_layer.ports import Accounts


class SignUp:
    """`await sign_up(form)` → the new account's id."""

    def __init__(self, accounts: Accounts) -> None:
        self._accounts = accounts

    async def __call__(self, form: SignUpForm) -> int:
        checked = form.checked()
        return await self._accounts.create_shopper(checked.email, checked.name, checked.password)
