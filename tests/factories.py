"""factory_boy factories; studies are made through the service so they get criteria and membership."""
import factory
from django.contrib.auth import get_user_model

from annotations.studies import services
from annotations.models import Item, Response, System


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("pw-for-tests-only")


class StudyFactory(factory.Factory):
    class Meta:
        model = dict

    owner = factory.SubFactory(UserFactory)
    slug = factory.Sequence(lambda n: f"study-{n}")
    title = factory.LazyAttribute(lambda o: f"Study {o.slug}")
    criteria = ("overall",)

    @classmethod
    def _create(cls, model_class, **kwargs):
        return services.create_study(**kwargs)

    _build = _create


class SystemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = System

    name = factory.Sequence(lambda n: f"system-{n}")


class ItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Item

    external_id = factory.Sequence(lambda n: f"p{n}")
    prompt = factory.Faker("paragraph")


class ResponseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Response

    item = factory.SubFactory(ItemFactory)
    system = factory.SubFactory(SystemFactory, study=factory.SelfAttribute("..item.study"))
    text = factory.Faker("paragraph")
