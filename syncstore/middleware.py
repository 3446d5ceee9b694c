from .binding import bound_to_user


class UserDatabaseMiddleware:
    """Binds the signed-in user's database around the rest of the request.

    A sync middleware on purpose: Django runs it, the view and the ORM calls in the
    same per-request thread, so the connection it closes at the end is the one the
    view used.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.user.is_authenticated:
            return self.get_response(request)
        with bound_to_user(request.user.pk):
            return self.get_response(request)
