from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies: list[tuple[str, str]] = []

    operations = [
        migrations.CreateModel(
            name="Video",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("title", models.CharField(max_length=200)),
                ("source", models.CharField(max_length=500)),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("CREATED", "Created"),
                            ("QUEUED", "Queued"),
                            ("PROCESS", "Process"),
                            ("DONE", "Done"),
                            ("ERROR", "Error"),
                        ],
                        default="CREATED",
                        max_length=10,
                    ),
                ),
                ("duration", models.FloatField(blank=True, null=True)),
                ("metadata", models.JSONField(blank=True, default=dict)),
                ("error", models.TextField(blank=True, default="")),
                ("task_id", models.CharField(blank=True, default="", max_length=255)),
            ],
        ),
    ]
