# The description a render gives with its progress ("Encoding video"), read by any process.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("renderstate", "0007_renderattempt_traceparent")]

    operations = [
        migrations.AddField(
            model_name="renderattempt",
            name="label",
            field=models.CharField(max_length=255, null=True),
        ),
    ]
