# The owner token: each start and each begin of an attempt records a fresh one, and it
# alone fences heartbeats, ends and takeovers (two runners in one process are two owners).

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("renderstate", "0001_initial")]

    operations = [
        migrations.AddField(
            model_name="renderattempt",
            name="owner",
            field=models.CharField(max_length=64, null=True),
        ),
    ]
