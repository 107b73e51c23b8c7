# The sweep turn: one worker process of a fleet sweeps per interval, the others skip it.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("renderstate", "0005_renderattempt_task_id")]

    operations = [
        migrations.CreateModel(
            name="SweepTurn",
            fields=[
                ("name", models.CharField(max_length=360, primary_key=True, serialize=False)),
                ("holder", models.CharField(max_length=255, null=True)),
                ("expires_at", models.FloatField()),
            ],
            options={"verbose_name": "sweep turn", "db_table": "renderstate_sweep_turn"},
        ),
    ]
