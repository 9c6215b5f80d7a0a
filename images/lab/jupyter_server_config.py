# Server settings of every student server in the lab image.
c = get_config()  # noqa: F821
# Students work in their home; the image's files stay out of the file browser.
c.ServerApp.root_dir = "/home/jovyan"
