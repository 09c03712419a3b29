"""``manage.py demo_user``: the demo's staff login (admin / admin), created if missing."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create the demo's local staff user admin/admin if it does not exist."

    def handle(self, *args, **options):
        User = get_user_model()
        if not User.objects.filter(username="admin").exists():
            User.objects.create_superuser("admin", "admin@example.com", "admin")
            self.stdout.write("created staff user admin / admin (demo only)")
