# Which task queue an attempt was handed to, so that a worker of that queue can send it
# again when its owner dies (prompt takeover) or hands it back (a warm shutdown).

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("renderstate", "0003_renderattempt_cancel")]

    operations = [
        migrations.AddField(
            model_name="renderattempt",
            name="executor",
            field=models.CharField(max_length=255, null=True),
        ),
    ]
