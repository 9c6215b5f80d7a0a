"""The site config and course files, loaded once into one validated model."""

from classhub.config.loader import default_site_file, load_platform
from classhub.config.model import Course, CourseProfile, Platform, Site, image_tag

__all__ = [
    "Course",
    "CourseProfile",
    "Platform",
    "Site",
    "default_site_file",
    "image_tag",
    "load_platform",
]
