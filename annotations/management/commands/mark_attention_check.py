"""python manage.py mark_attention_check SLUG ITEM_ID --system NAME --rule not_first  (or --clear)."""
from django.core.management.base import BaseCommand, CommandError

from annotations.annotating import services
from annotations.models import AttentionRule, Item, Study


class Command(BaseCommand):
    help = "Mark an item as an attention check: the named system's response must meet the rule."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("item_id", help="the item's id in your data (its external id)")
        parser.add_argument("--system", help="the system whose response is the planted one")
        parser.add_argument("--rule", choices=AttentionRule.values, default="not_first",
                            help="not_first: must not be ranked first; last / first: alone at that end")
        parser.add_argument("--clear", action="store_true", help="the item is no longer a check")

    def handle(self, *args, **options):
        study = Study.objects.filter(slug=options["slug"]).first()
        if study is None:
            raise CommandError(f"no study '{options['slug']}'")
        item = Item.objects.filter(study=study, external_id=options["item_id"]).first()
        if item is None:
            raise CommandError(f"study '{study.slug}' has no item '{options['item_id']}'")
        if options["clear"]:
            services.clear_attention_check(item)
            self.stdout.write(f"Item '{item.external_id}' is no longer an attention check.")
            return
        if not options["system"]:
            raise CommandError("give --system NAME (or --clear)")
        try:
            services.set_attention_check(item, options["system"], options["rule"])
        except services.AttentionCheckInvalid as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"Item '{item.external_id}' is an attention check: {options['system']} "
                          f"{options['rule'].replace('_', ' ')}.")
