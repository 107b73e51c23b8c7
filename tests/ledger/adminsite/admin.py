from django.contrib import admin

from djangoapp.models import Project
from renderstate.ledger.django.admin import RenderAdminMixin


@admin.register(Project)
class ProjectAdmin(RenderAdminMixin, admin.ModelAdmin):
    render_runner = "ledger.adminsite.rendering.runner"
    readonly_fields = ("render_attempts",)
    actions = ("start_render",)
