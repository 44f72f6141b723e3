"""django-axes' database handler, except that a successful login clears only the failures of the account that
logged in.

With the lockout parameters "username" and "ip_address" (settings.py), axes' own reset deletes every failure of
the account *or the address*: someone guessing another account's password could log in to their own account
after each four guesses to clear them. Here a success deletes the failures recorded against its own username
(from every address), and nothing else."""

from __future__ import annotations

from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_client_username
from axes.models import AccessAttempt

__all__ = ["AccountResetHandler"]


class AccountResetHandler(AxesDatabaseHandler):
    def reset_user_attempts(self, request, credentials=None) -> int:
        username = get_client_username(request, credentials)
        if not username:
            return 0
        count, _ = AccessAttempt.objects.filter(username=username).delete()
        return count
