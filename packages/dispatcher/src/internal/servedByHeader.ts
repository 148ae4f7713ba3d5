/** Response header naming the instance that answered: `module/version/instance`. */
export const SERVED_BY_HEADER = 'x-served-by';
