"""API paging for every list: ?limit=&offset=, with a ceiling on the page size, so that no request
reads or sends a whole large study at once (a million responses answered one page of at most
MAX_LIMIT, not 167 MB)."""
from rest_framework.pagination import LimitOffsetPagination


class BoundedLimitOffsetPagination(LimitOffsetPagination):
    default_limit = 100
    max_limit = 1000  # a larger ?limit= is served as this many; `next` links to the rest
