# nbgrader in every server of the lab image. The exchange lives under /srv/nbgrader/exchange:
# a student container sees, per course, the released assignments (read-only) and only its own
# inbound and feedback folders; identity comes from those folders, not from what a student says.
from nbgrader.auth import JupyterHubAuthPlugin

c = get_config()  # noqa: F821
c.Exchange.root = "/srv/nbgrader/exchange"
c.Exchange.path_includes_course = True  # ~/<course>/<assignment>: courses never collide
c.Authenticator.plugin_class = JupyterHubAuthPlugin  # courses from the hub groups
c.ExchangeFactory.collect = "classhub_exchange.PlatformCollect"
c.ExchangeFactory.release_feedback = "classhub_exchange.PlatformReleaseFeedback"
c.ExchangeFactory.submit = "classhub_exchange.PlatformSubmit"
