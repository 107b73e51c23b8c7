# The trace context of the request that started each render, for the renders sent again.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("renderstate", "0006_sweepturn")]

    operations = [
        migrations.AddField(
            model_name="renderattempt",
            name="traceparent",
            field=models.CharField(max_length=64, null=True),
        ),
    ]
