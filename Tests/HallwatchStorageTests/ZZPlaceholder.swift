// placeholder while a helper works here
