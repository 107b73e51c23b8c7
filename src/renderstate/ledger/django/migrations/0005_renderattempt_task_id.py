# The task system's id of each render (a Celery task id), recorded with its start.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("renderstate", "0004_renderattempt_executor")]

    operations = [
        migrations.AddField(
            model_name="renderattempt",
            name="task_id",
            field=models.CharField(max_length=255, null=True),
        ),
    ]
