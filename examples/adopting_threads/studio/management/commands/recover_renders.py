"""``manage.py recover_renders``: fail the renders a dead process left PROCESSING (the swap).

Safe at any time, in any process, while others render: the ledger acts only on attempts
whose lease expired or whose process on this machine is gone. Run it as a deploy step.
"""

from django.core.management.base import BaseCommand

from studio.renders import get_runner


class Command(BaseCommand):
    help = "Fail the renders a dead process left PROCESSING; put their previous video back."

    def handle(self, *args: object, **options: object) -> None:
        records = get_runner().recover_interrupted()
        self.stdout.write(f"recovered {len(records)} render(s)")
