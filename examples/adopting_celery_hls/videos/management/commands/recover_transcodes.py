"""``manage.py recover_transcodes``: end the transcodes a dead worker left QUEUED or PROCESS.

Safe at any time, in any process, while workers transcode: the ledger acts only on
attempts whose lease expired or whose process on this machine is gone. Each is set ERROR,
its previous HLS directory put back whole if the dead worker had swapped its own in, and
its staging directory removed.
"""

from django.core.management.base import BaseCommand

from videos.renders import web_runner


class Command(BaseCommand):
    help = "End the transcodes a dead worker left running; put their previous output back."

    def handle(self, *args: object, **options: object) -> None:
        records = web_runner().recover_interrupted()
        self.stdout.write(f"recovered {len(records)} transcode(s)")
