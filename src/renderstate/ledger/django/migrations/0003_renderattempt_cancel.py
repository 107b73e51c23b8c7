# A cancel request, from any process: recorded on the live attempt, seen by its owner at
# its next heartbeat, and refusing its completion from then on.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("renderstate", "0002_renderattempt_owner")]

    operations = [
        migrations.AddField(
            model_name="renderattempt",
            name="cancel_requested_at",
            field=models.FloatField(null=True),
        ),
        migrations.AddField(
            model_name="renderattempt",
            name="cancel_reason",
            field=models.TextField(null=True),
        ),
    ]
